#include "vmci/proto/doorbell_hypercalls.h"

namespace vmci::proto {
namespace {

template <typename Message>
Bytes encode(uint32_t resource, const Message& msg) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&msg) + sizeof(vmci_datagram);
  return make_datagram(VMCI_MAKE_HANDLE(VMCI_HYPERVISOR_CONTEXT_ID, resource),
                       VMCI_ANON_SRC_HANDLE,
                       std::span(bytes, sizeof(Message) - sizeof(vmci_datagram)));
}

template <typename Message>
bool decode(std::span<const uint8_t> dg, Message* msg) {
  if (dg.size() != sizeof(Message)) return false;
  std::memcpy(msg, dg.data(), sizeof(Message));
  return msg->hdr.payload_size == sizeof(Message) - sizeof(vmci_datagram);
}

}  // namespace

Bytes make_doorbell_link_message(vmci_handle handle, uint64_t notify_index) {
  vmci_doorbell_link_msg msg{};
  msg.handle = handle;
  msg.notify_idx = notify_index;
  return encode(VMCI_DOORBELL_LINK, msg);
}

Bytes make_doorbell_message(uint32_t resource, vmci_handle handle) {
  vmci_doorbell_notify_msg msg{};  // the same layout as the unlink message
  msg.handle = handle;
  return encode(resource, msg);
}

int parse_doorbell_link_message(std::span<const uint8_t> dg, vmci_handle* handle,
                                uint64_t* notify_index) {
  vmci_doorbell_link_msg msg;
  if (!decode(dg, &msg)) return VMCI_ERROR_INVALID_ARGS;
  *handle = msg.handle;
  *notify_index = msg.notify_idx;
  return VMCI_SUCCESS;
}

int parse_doorbell_message(std::span<const uint8_t> dg, vmci_handle* handle) {
  vmci_doorbell_notify_msg msg;
  if (!decode(dg, &msg)) return VMCI_ERROR_INVALID_ARGS;
  *handle = msg.handle;
  return VMCI_SUCCESS;
}

int check_doorbell_create(bool have_handle, bool have_callback, uint32_t flags,
                          uint32_t priv_flags) {
  constexpr uint32_t kDelayedCallback = 0x1;  // VMCI_FLAG_DELAYED_CB
  if (!have_handle || !have_callback || (flags & ~kDelayedCallback) ||
      (priv_flags & ~VMCI_PRIVILEGE_ALL_FLAGS)) {
    return VMCI_ERROR_INVALID_ARGS;
  }
  return VMCI_SUCCESS;
}

}  // namespace vmci::proto
