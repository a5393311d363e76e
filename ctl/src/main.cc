// vmci-ctl: looks inside a running hostpeer (the daemon, or a proxy that
// embeds one with a socket) as a host connection: what it holds, context by
// context, pair by pair, as tables or JSON.
//
//   vmci-ctl [--socket PATH] [--json] VIEW
//   vmci-ctl [--socket PATH] [--json] watch [VIEW] [--interval SECONDS] [--count N]
//
// VIEW: status (default), contexts, pairs, doorbells, handles,
// subscriptions. Exit status 0; 1 when hostpeer cannot be reached or
// refuses (the message says why); 2 for a bad command line.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "snapshot_client.h"
#include "tables.h"

namespace {

using vmci::ctl::View;

constexpr const char* kViews = "status, contexts, pairs, doorbells, handles, subscriptions";

// One snapshot, printed as the view's table or as JSON; false with *error.
bool print_once(vmci::ctl::SnapshotClient& client, View view, bool json, bool redraw,
                std::string* error) {
  std::string text;
  if (!client.fetch(&text, error)) return false;
  if (json) {
    std::cout << text << std::endl;
    return true;
  }
  vmci::Introspection snapshot;
  if (!vmci::parse_introspection(text, &snapshot, error)) return false;
  std::string out;
  if (redraw) {
    const std::time_t now = std::time(nullptr);
    char clock[16];
    std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&now));
    out = "\x1b[H\x1b[2J";  // home, clear: top's way of redrawing
    out += "vmci-ctl watch " + std::string(vmci::ctl::view_name(view)) + "   " + clock +
           "   (Ctrl-C ends)\n\n";
  }
  out += vmci::ctl::render(snapshot, view);
  std::cout << out << std::flush;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmci-ctl: look inside a running hostpeer (vmci-hostpeer or a proxy embedding one)"};
  app.set_version_flag("--version", std::string("vmci-ctl ") + VMCI_VERSION);
  std::string socket_path;
  bool json = false;
  std::string view_word = "status";
  double interval_s = 1.0;
  int count = 0;
  app.add_option("--socket", socket_path,
                 "hostpeer's socket (default: $VMCI_HOSTPEER_SOCKET, else hostpeer's default)");
  app.add_flag("--json", json, "print the snapshot as JSON (docs/INTROSPECTION.md) instead of a table");
  app.add_option("view", view_word, std::string("what to show: ") + kViews);
  auto* watch = app.add_subcommand("watch", "redraw the view every --interval until interrupted");
  watch->add_option("view", view_word, std::string("what to show: ") + kViews);
  watch->add_option("--interval", interval_s, "seconds between redraws (default 1)")
      ->check(CLI::Range(0.05, 3600.0));
  watch->add_option("--count", count, "stop after this many redraws (default: until interrupted)")
      ->check(CLI::NonNegativeNumber);
  app.footer(
      "Exit status: 0; 1 hostpeer cannot be reached or refused; 2 a bad command line.\n"
      "The connection is a host connection: your user must be hostpeer's, or allowed with\n"
      "vmci-hostpeer --allow-host-uid.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  const auto view = vmci::ctl::view_from_name(view_word);
  if (!view) {
    std::fprintf(stderr, "vmci-ctl: unknown view '%s' (views: %s)\n", view_word.c_str(), kViews);
    return 2;
  }
  std::string error;
  auto client = vmci::ctl::SnapshotClient::open(socket_path, &error);
  if (!client) {
    std::fprintf(stderr, "vmci-ctl: %s\n", error.c_str());
    return 1;
  }
  if (!watch->parsed()) {
    if (print_once(*client, *view, json, false, &error)) return 0;
    std::fprintf(stderr, "vmci-ctl: %s\n", error.c_str());
    return 1;
  }
  for (int n = 0; count == 0 || n < count; ++n) {
    if (n > 0) std::this_thread::sleep_for(std::chrono::duration<double>(interval_s));
    if (!print_once(*client, *view, json, !json, &error)) {
      std::fprintf(stderr, "vmci-ctl: %s\n", error.c_str());
      return 1;
    }
  }
  return 0;
}
