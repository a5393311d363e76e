// stats.h: the summary of one figure's runs: minimum, median, maximum.
#pragma once

#include <algorithm>
#include <vector>

namespace bench {

struct Summary {
  double min = 0, median = 0, max = 0;
};

// `values` must not be empty. The median of an even count is the mean of
// the two middle values.
inline Summary summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return {values.front(), median, values.back()};
}

}  // namespace bench
