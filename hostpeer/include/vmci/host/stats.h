// stats.h: counts of what hostpeer holds (vmci/stats.h), under the name
// the embedding API has always used.
#pragma once

#include "vmci/stats.h"

namespace vmci::host {

using Stats = vmci::Stats;

}  // namespace vmci::host
