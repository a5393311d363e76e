// vmci_hostpeer_strerror: the name of every VMCI status code and what it
// means to a caller of this library, in one sentence.
#include <cstdio>
#include <iterator>

#include "vmci/vmci_defs.h"
#include "vmci/vmci_hostpeer.h"

namespace {

struct StatusText {
  int code;
  const char* text;  // "NAME: sentence."
};

#define VMCI_TEXT(code, sentence) {code, #code ": " sentence}

// Every status code of vmci_defs.h, in its order.
constexpr StatusText kStatusTexts[] = {
    VMCI_TEXT(VMCI_SUCCESS_QUEUEPAIR_ATTACH, "success: the call attached to an existing queue pair."),
    VMCI_TEXT(VMCI_SUCCESS_QUEUEPAIR_CREATE, "success: the call created a new queue pair."),
    VMCI_TEXT(VMCI_SUCCESS_LAST_DETACH, "success: the last endpoint detached and the queue pair is gone."),
    VMCI_TEXT(VMCI_SUCCESS_ACCESS_GRANTED, "success: access was granted."),
    VMCI_TEXT(VMCI_SUCCESS_ENTRY_DEAD, "success: the entry was already being removed."),
    VMCI_TEXT(VMCI_SUCCESS, "the call succeeded."),
    VMCI_TEXT(VMCI_ERROR_INVALID_RESOURCE, "no datagram handle or resource with that id exists at the destination."),
    VMCI_TEXT(VMCI_ERROR_INVALID_ARGS, "an argument is null, out of range or malformed."),
    VMCI_TEXT(VMCI_ERROR_NO_MEM, "memory for the request could not be allocated."),
    VMCI_TEXT(VMCI_ERROR_DATAGRAM_FAILED, "the datagram could not be delivered."),
    VMCI_TEXT(VMCI_ERROR_MORE_DATA, "the buffer is too small for what there is to return."),
    VMCI_TEXT(VMCI_ERROR_NO_MORE_DATAGRAMS, "there are no more datagrams to read."),
    VMCI_TEXT(VMCI_ERROR_NO_ACCESS, "the caller's privileges do not allow this (a restricted context, or a guest asking for a host call)."),
    VMCI_TEXT(VMCI_ERROR_NO_HANDLE, "the datagram's source is not one of the sender's datagram handles."),
    VMCI_TEXT(VMCI_ERROR_DUPLICATE_ENTRY, "a handle or entry with that id exists already."),
    VMCI_TEXT(VMCI_ERROR_DST_UNREACHABLE, "the destination context does not exist or may not be reached from this one (VM to VM)."),
    VMCI_TEXT(VMCI_ERROR_PAYLOAD_TOO_LARGE, "the payload is larger than a datagram may carry."),
    VMCI_TEXT(VMCI_ERROR_INVALID_PRIV, "the privilege flags are not valid here."),
    VMCI_TEXT(VMCI_ERROR_GENERIC, "the call failed for a reason VMCI does not name (hostpeer's log may say)."),
    VMCI_TEXT(VMCI_ERROR_PAGE_ALREADY_SHARED, "the page is shared already."),
    VMCI_TEXT(VMCI_ERROR_CANNOT_SHARE_PAGE, "the page could not be shared."),
    VMCI_TEXT(VMCI_ERROR_CANNOT_UNSHARE_PAGE, "the page could not be unshared."),
    VMCI_TEXT(VMCI_ERROR_NO_PROCESS, "no process is there to take the request."),
    VMCI_TEXT(VMCI_ERROR_NO_DATAGRAM, "no datagram is there."),
    VMCI_TEXT(VMCI_ERROR_NO_RESOURCES, "a limit was reached (pending datagram bytes, handles, queue pairs or doorbells); retry once the receiver has caught up or something was freed."),
    VMCI_TEXT(VMCI_ERROR_UNAVAILABLE, "hostpeer cannot be reached or the connection to it ended (vmci_hostpeer_last_error() says why)."),
    VMCI_TEXT(VMCI_ERROR_NOT_FOUND, "no such handle, doorbell, subscription or queue pair."),
    VMCI_TEXT(VMCI_ERROR_ALREADY_EXISTS, "that id is in use already (a context id, a handle, a doorbell)."),
    VMCI_TEXT(VMCI_ERROR_NOT_PAGE_ALIGNED, "an address or size is not page-aligned."),
    VMCI_TEXT(VMCI_ERROR_INVALID_SIZE, "a size is out of range (zero, too large, or an index beyond its queue)."),
    VMCI_TEXT(VMCI_ERROR_REGION_ALREADY_SHARED, "the memory region is shared already."),
    VMCI_TEXT(VMCI_ERROR_TIMEOUT, "the wait ended before what was waited for happened."),
    VMCI_TEXT(VMCI_ERROR_DATAGRAM_INCOMPLETE, "only part of the datagram was there."),
    VMCI_TEXT(VMCI_ERROR_INCORRECT_IRQL, "the call was made from a context that may not make it."),
    VMCI_TEXT(VMCI_ERROR_EVENT_UNKNOWN, "no such event type."),
    VMCI_TEXT(VMCI_ERROR_OBSOLETE, "the call is obsolete and no longer supported."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_MISMATCH, "the queue pair's sizes, flags or peer differ from those it was created with."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NOTSET, "the queue pair's memory is not set up yet."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NOTOWNER, "the caller is not an endpoint of that queue pair."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NOTATTACHED, "the queue pair's peer is not attached (not yet, or no longer)."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NOSPACE, "the produce queue is full; wait for the peer to read."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NODATA, "the consume queue is empty; wait for the peer to write."),
    VMCI_TEXT(VMCI_ERROR_BUSMEM_INVALIDATION, "the queue pair's memory was taken away."),
    VMCI_TEXT(VMCI_ERROR_MODULE_NOT_LOADED, "the VMCI module is not loaded."),
    VMCI_TEXT(VMCI_ERROR_DEVICE_NOT_FOUND, "no VMCI device was found."),
    VMCI_TEXT(VMCI_ERROR_QUEUEPAIR_NOT_READY, "the queue pair is not ready yet."),
    VMCI_TEXT(VMCI_ERROR_WOULD_BLOCK, "the call would have had to wait, and was asked not to."),
    VMCI_TEXT(VMCI_ERROR_CLIENT_MIN, "the first of the codes reserved for a VMCI client's own errors."),
    VMCI_TEXT(VMCI_ERROR_CLIENT_MAX, "the last of the codes reserved for a VMCI client's own errors."),
    VMCI_TEXT(VMCI_SHAREDMEM_ERROR_BAD_CONTEXT, "the shared memory belongs to another context."),
};

#undef VMCI_TEXT

}  // namespace

extern "C" const char* vmci_hostpeer_strerror(int status) {
  for (const StatusText& entry : kStatusTexts) {
    if (entry.code == status) return entry.text;
  }
  thread_local char text[96];
  if (status > 0) {
    std::snprintf(text, sizeof text, "%d: success: a count (of bytes, or datagram size).", status);
  } else if (status < VMCI_ERROR_CLIENT_MIN && status > VMCI_ERROR_CLIENT_MAX) {
    std::snprintf(text, sizeof text, "%d: an error of a VMCI client's own (the client range).",
                  status);
  } else {
    std::snprintf(text, sizeof text, "%d: not a VMCI status code.", status);
  }
  return text;
}
