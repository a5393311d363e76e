-- vmci.lua: a Wireshark dissector for the captures `vmci-hostpeer --capture
-- FILE.pcapng` writes (LINKTYPE_USER0, one record per packet; the format is
-- docs/CAPTURE.md of vmci-hostpeer). It shows each record (datagrams sent
-- and delivered, hypercalls and requests with their results, peers coming
-- and going, doorbell rings), the VMCI datagram inside, the events, the
-- queue-pair and doorbell hypercalls, and the vSockets control packet of
-- datagrams to resource 1.
--
--   tshark -X lua_script:/usr/share/vmci-hostpeer/wireshark/vmci.lua -r FILE.pcapng
--   wireshark -X lua_script:... FILE.pcapng   (or copy it to ~/.local/lib/wireshark/plugins/)
--
-- A packet that is not a record (no "VMCI" magic, too short) is shown as
-- malformed, never guessed at.

local vmci = Proto("vmci", "VMCI (vmci-hostpeer capture)")

local kinds = {
  [1] = "start", [2] = "admit", [3] = "remove", [4] = "send", [5] = "deliver",
  [6] = "ring", [7] = "qpair_alloc", [8] = "qpair_detach", [9] = "doorbell_create",
  [10] = "doorbell_destroy", [11] = "doorbell_notify", [12] = "datagram_create_handle",
  [13] = "datagram_destroy_handle", [14] = "update_context_id",
}
local roles = { [1] = "guest", [2] = "host" }
local hypercalls = {
  [0] = "RESOURCES_QUERY", [1] = "GET_CONTEXT_ID", [2] = "SET_NOTIFY_BITMAP",
  [3] = "DOORBELL_LINK", [4] = "DOORBELL_UNLINK", [5] = "DOORBELL_NOTIFY",
  [6] = "DATAGRAM_REQUEST_MAP", [7] = "DATAGRAM_REMOVE_MAP", [8] = "EVENT_SUBSCRIBE",
  [9] = "EVENT_UNSUBSCRIBE", [10] = "QUEUEPAIR_ALLOC", [11] = "QUEUEPAIR_DETACH",
  [12] = "VSOCK_VMX_LOOKUP", [13] = "HGFS_TRANSPORT", [14] = "UNITY_PBRPC_REGISTER",
  [15] = "VSOCK_PACKET_HYPERVISOR",
}
local events = {
  [0] = "CTX_ID_UPDATE", [1] = "CTX_REMOVED", [2] = "QP_RESUMED", [3] = "QP_PEER_ATTACH",
  [4] = "QP_PEER_DETACH", [5] = "MEM_ACCESS_ON", [6] = "MEM_ACCESS_OFF",
  [7] = "GUEST_PAUSED", [8] = "GUEST_UNPAUSED",
}
local results = {
  [5] = "SUCCESS_QUEUEPAIR_ATTACH", [4] = "SUCCESS_QUEUEPAIR_CREATE",
  [3] = "SUCCESS_LAST_DETACH", [2] = "SUCCESS_ACCESS_GRANTED", [1] = "SUCCESS_ENTRY_DEAD",
  [0] = "SUCCESS", [-1] = "ERROR_INVALID_RESOURCE", [-2] = "ERROR_INVALID_ARGS",
  [-3] = "ERROR_NO_MEM", [-4] = "ERROR_DATAGRAM_FAILED", [-5] = "ERROR_MORE_DATA",
  [-6] = "ERROR_NO_MORE_DATAGRAMS", [-7] = "ERROR_NO_ACCESS", [-8] = "ERROR_NO_HANDLE",
  [-9] = "ERROR_DUPLICATE_ENTRY", [-10] = "ERROR_DST_UNREACHABLE",
  [-11] = "ERROR_PAYLOAD_TOO_LARGE", [-12] = "ERROR_INVALID_PRIV", [-13] = "ERROR_GENERIC",
  [-14] = "ERROR_PAGE_ALREADY_SHARED", [-15] = "ERROR_CANNOT_SHARE_PAGE",
  [-16] = "ERROR_CANNOT_UNSHARE_PAGE", [-17] = "ERROR_NO_PROCESS",
  [-18] = "ERROR_NO_DATAGRAM", [-19] = "ERROR_NO_RESOURCES", [-20] = "ERROR_UNAVAILABLE",
  [-21] = "ERROR_NOT_FOUND", [-22] = "ERROR_ALREADY_EXISTS",
  [-23] = "ERROR_NOT_PAGE_ALIGNED", [-24] = "ERROR_INVALID_SIZE",
  [-25] = "ERROR_REGION_ALREADY_SHARED", [-26] = "ERROR_TIMEOUT",
  [-27] = "ERROR_DATAGRAM_INCOMPLETE", [-28] = "ERROR_INCORRECT_IRQL",
  [-29] = "ERROR_EVENT_UNKNOWN", [-30] = "ERROR_OBSOLETE",
  [-31] = "ERROR_QUEUEPAIR_MISMATCH", [-32] = "ERROR_QUEUEPAIR_NOTSET",
  [-33] = "ERROR_QUEUEPAIR_NOTOWNER", [-34] = "ERROR_QUEUEPAIR_NOTATTACHED",
  [-35] = "ERROR_QUEUEPAIR_NOSPACE", [-36] = "ERROR_QUEUEPAIR_NODATA",
  [-37] = "ERROR_BUSMEM_INVALIDATION", [-38] = "ERROR_MODULE_NOT_LOADED",
  [-39] = "ERROR_DEVICE_NOT_FOUND", [-40] = "ERROR_QUEUEPAIR_NOT_READY",
  [-41] = "ERROR_WOULD_BLOCK",
}
local vsock_types = {
  [0] = "INVALID", [1] = "REQUEST", [2] = "NEGOTIATE", [3] = "OFFER", [4] = "ATTACH",
  [5] = "WROTE", [6] = "READ", [7] = "RST", [8] = "SHUTDOWN", [9] = "WAITING_WRITE",
  [10] = "WAITING_READ", [11] = "REQUEST2", [12] = "NEGOTIATE2",
}

local f = {
  magic = ProtoField.string("vmci.magic", "Magic"),
  version = ProtoField.uint8("vmci.version", "Record version"),
  kind = ProtoField.uint8("vmci.kind", "Kind", base.DEC, kinds),
  header_size = ProtoField.uint16("vmci.header_size", "Header size"),
  peer = ProtoField.uint64("vmci.peer", "Connection"),
  cid = ProtoField.uint32("vmci.cid", "Context"),
  body_size = ProtoField.uint32("vmci.body_size", "Body size"),
  result = ProtoField.int64("vmci.result", "Result"),
  result_name = ProtoField.string("vmci.result_name", "Result name"),
  role = ProtoField.uint8("vmci.role", "Role", base.DEC, roles),
  pid = ProtoField.int64("vmci.pid", "Process id"),
  limit = ProtoField.uint64("vmci.limit", "Limit"),
  handle_context = ProtoField.uint32("vmci.handle.context", "Handle context"),
  handle_resource = ProtoField.uint32("vmci.handle.resource", "Handle resource"),
  out_context = ProtoField.uint32("vmci.out.context", "Handle made: context"),
  out_resource = ProtoField.uint32("vmci.out.resource", "Handle made: resource"),
  peer_context = ProtoField.uint32("vmci.peer_context", "Peer context"),
  resource = ProtoField.uint32("vmci.resource", "Resource"),
  flags = ProtoField.uint32("vmci.flags", "Flags", base.HEX),
  priv_flags = ProtoField.uint32("vmci.priv_flags", "Privilege flags", base.HEX),
  produce_size = ProtoField.uint64("vmci.produce_size", "Produce queue size"),
  consume_size = ProtoField.uint64("vmci.consume_size", "Consume queue size"),
  notify_index = ProtoField.uint64("vmci.notify_index", "Notify index"),
  old_cid = ProtoField.uint32("vmci.old_cid", "Old context"),
  new_cid = ProtoField.uint32("vmci.new_cid", "New context"),
  dg_dst_context = ProtoField.uint32("vmci.dg.dst.context", "Destination context"),
  dg_dst_resource = ProtoField.uint32("vmci.dg.dst.resource", "Destination resource"),
  dg_src_context = ProtoField.uint32("vmci.dg.src.context", "Source context"),
  dg_src_resource = ProtoField.uint32("vmci.dg.src.resource", "Source resource"),
  dg_payload_size = ProtoField.uint64("vmci.dg.payload_size", "Payload size"),
  dg_payload = ProtoField.bytes("vmci.dg.payload", "Payload"),
  hypercall = ProtoField.uint32("vmci.hypercall", "Hypercall", base.DEC, hypercalls),
  event = ProtoField.uint32("vmci.event", "Event", base.DEC, events),
  event_context = ProtoField.uint32("vmci.event.context", "Event: context"),
  event_peer = ProtoField.uint32("vmci.event.peer", "Event: peer"),
  qp_num_ppns = ProtoField.uint64("vmci.qp.num_ppns", "Page numbers"),
  vs_version = ProtoField.uint8("vmci.vsock.version", "vSockets version"),
  vs_type = ProtoField.uint8("vmci.vsock.type", "vSockets packet type", base.DEC, vsock_types),
  vs_proto = ProtoField.uint16("vmci.vsock.proto", "Notify protocols", base.HEX),
  vs_src_port = ProtoField.uint32("vmci.vsock.src_port", "Source port"),
  vs_dst_port = ProtoField.uint32("vmci.vsock.dst_port", "Destination port"),
  vs_size = ProtoField.uint64("vmci.vsock.size", "Size"),
  vs_mode = ProtoField.uint64("vmci.vsock.mode", "Shutdown mode"),
  vs_handle_context = ProtoField.uint32("vmci.vsock.handle.context", "Queue pair context"),
  vs_handle_resource = ProtoField.uint32("vmci.vsock.handle.resource", "Queue pair resource"),
  vs_generation = ProtoField.uint64("vmci.vsock.generation", "Waiting generation"),
  vs_offset = ProtoField.uint64("vmci.vsock.offset", "Waiting offset"),
}
vmci.fields = {}
for _, field in pairs(f) do table.insert(vmci.fields, field) end

local e_malformed = ProtoExpert.new("vmci.malformed", "Not a vmci-hostpeer capture record",
                                    expert.group.MALFORMED, expert.severity.ERROR)
vmci.experts = { e_malformed }

-- An id as the Info column shows it: VMCI_INVALID_ID (any) as "*".
local function id_text(id)
  if id == 0xFFFFFFFF then return "*" end
  return tostring(id)
end

local function add_handle(tree, buf, context_field, resource_field)
  tree:add_le(context_field, buf(0, 4))
  tree:add_le(resource_field, buf(4, 4))
  return id_text(buf(0, 4):le_uint()) .. ":" .. id_text(buf(4, 4):le_uint())
end

local function result_text(r)
  return results[r] or tostring(r)
end

-- The vSockets control packet (32 bytes after the datagram header), from
-- context `src_cid` to `dst_cid` (as the Info column shows them).
local function dissect_vsock(buf, tree, src_cid, dst_cid)
  local t = tree:add(vmci, buf, "vSockets control packet")
  t:add(f.vs_version, buf(0, 1))
  t:add(f.vs_type, buf(1, 1))
  t:add_le(f.vs_proto, buf(2, 2))
  t:add_le(f.vs_src_port, buf(4, 4))
  t:add_le(f.vs_dst_port, buf(8, 4))
  local ptype = buf(1, 1):uint()
  local name = vsock_types[ptype] or ("type " .. ptype)
  local text = string.format("vSockets %s %s:%u -> %s:%u", name, src_cid, buf(4, 4):le_uint(),
                             dst_cid, buf(8, 4):le_uint())
  if ptype == 1 or ptype == 2 or ptype == 11 or ptype == 12 then
    t:add_le(f.vs_size, buf(16, 8))
    text = text .. " size " .. tostring(buf(16, 8):le_uint64())
  elseif ptype == 8 then
    t:add_le(f.vs_mode, buf(16, 8))
    text = text .. " mode " .. tostring(buf(16, 8):le_uint64())
  elseif ptype == 3 or ptype == 4 then
    local qp = add_handle(t, buf(16, 8), f.vs_handle_context, f.vs_handle_resource)
    text = text .. " pair " .. qp
  elseif ptype == 9 or ptype == 10 then
    t:add_le(f.vs_generation, buf(16, 8))
    t:add_le(f.vs_offset, buf(24, 8))
  end
  return text
end

-- A VMCI datagram: the 24-byte header, then the payload.
local function dissect_datagram(buf, tree)
  if buf:len() < 24 then return "short datagram" end
  local t = tree:add(vmci, buf, "VMCI datagram")
  local dst = add_handle(t, buf(0, 8), f.dg_dst_context, f.dg_dst_resource)
  local src = add_handle(t, buf(8, 8), f.dg_src_context, f.dg_src_resource)
  t:add_le(f.dg_payload_size, buf(16, 8))
  local size = buf:len() - 24
  local text = string.format("%s -> %s %u bytes", src, dst, size)
  local dst_context, dst_resource = buf(0, 4):le_uint(), buf(4, 4):le_uint()
  local src_context, src_resource = buf(8, 4):le_uint(), buf(12, 4):le_uint()
  local is_hypercall = dst_context == 0 and dst_resource ~= 15
  if is_hypercall then
    t:add_le(f.hypercall, buf(4, 4))
    text = "hypercall " .. (hypercalls[dst_resource] or tostring(dst_resource))
  end
  if size == 0 then return text end
  local payload = buf(24, size)
  t:add(f.dg_payload, payload)
  if is_hypercall then
    if (dst_resource == 10 and size >= 40) then
      local qp = add_handle(t, payload(0, 8), f.handle_context, f.handle_resource)
      t:add_le(f.peer_context, payload(8, 4))
      t:add_le(f.flags, payload(12, 4))
      t:add_le(f.produce_size, payload(16, 8))
      t:add_le(f.consume_size, payload(24, 8))
      t:add_le(f.qp_num_ppns, payload(32, 8))
      text = string.format("%s %s peer %u produce %s consume %s", text, qp,
                           payload(8, 4):le_uint(), tostring(payload(16, 8):le_uint64()),
                           tostring(payload(24, 8):le_uint64()))
    elseif (dst_resource == 11 or dst_resource == 4 or dst_resource == 5) and size >= 8 then
      text = text .. " " .. add_handle(t, payload(0, 8), f.handle_context, f.handle_resource)
    elseif dst_resource == 3 and size >= 16 then
      text = text .. " " .. add_handle(t, payload(0, 8), f.handle_context, f.handle_resource)
      t:add_le(f.notify_index, payload(8, 8))
    end
  elseif (dst_resource == 1 or (dst_context == 0 and dst_resource == 15)) and size == 32 then
    text = dissect_vsock(payload, t, id_text(src_context), id_text(dst_context))
  elseif src_context == 0 and src_resource == 0 and dst_resource == 0 and size >= 8 then
    t:add_le(f.event, payload(0, 4))
    local event = payload(0, 4):le_uint()
    text = string.format("event %s to %s", events[event] or tostring(event), dst)
    if (event == 3 or event == 4) and size >= 24 then
      text = text .. " pair " .. add_handle(t, payload(8, 8), f.handle_context, f.handle_resource)
      t:add_le(f.event_peer, payload(16, 4))
    elseif size >= 16 then
      t:add_le(f.event_context, payload(8, 4))
      text = text .. " context " .. payload(8, 4):le_uint()
    end
  end
  return text
end

function vmci.dissector(buf, pinfo, tree)
  pinfo.cols.protocol = "VMCI"
  local root = tree:add(vmci, buf(), "VMCI capture record")
  if buf:len() < 32 or buf(0, 4):string() ~= "VMCI" then
    root:add_proto_expert_info(e_malformed)
    return
  end
  root:add(f.magic, buf(0, 4))
  root:add(f.version, buf(4, 1))
  root:add(f.kind, buf(5, 1))
  root:add_le(f.header_size, buf(6, 2))
  root:add_le(f.peer, buf(8, 8))
  root:add_le(f.cid, buf(16, 4))
  root:add_le(f.body_size, buf(20, 4))
  root:add_le(f.result, buf(24, 8))
  local header_size = buf(6, 2):le_uint()
  local body_size = buf(20, 4):le_uint()
  if header_size < 32 or header_size + body_size > buf:len() then
    root:add_proto_expert_info(e_malformed)
    return
  end
  local kind = buf(5, 1):uint()
  local cid = buf(16, 4):le_uint()
  local result = buf(24, 8):le_int64():tonumber()
  root:add(f.result_name, buf(24, 8), result_text(result))
  local body = body_size > 0 and buf(header_size, body_size) or nil
  local need = { [1] = 40, [2] = 16, [4] = 24, [5] = 24, [6] = 16, [7] = 48, [8] = 8, [9] = 24,
                 [10] = 8, [11] = 16, [12] = 24, [13] = 8, [14] = 8 }
  if need[kind] and body_size < need[kind] then
    root:add_proto_expert_info(e_malformed)
    return
  end
  local kind_name = kinds[kind] or ("kind " .. kind)
  local text
  if kind == 1 then
    for i = 0, 4 do root:add_le(f.limit, body(i * 8, 8)) end
    text = "hostpeer started"
  elseif kind == 2 then
    root:add(f.role, body(0, 1))
    root:add_le(f.pid, body(8, 8))
    text = string.format("admit %s pid %s as context %s: %s", roles[body(0, 1):uint()] or "?",
                         tostring(body(8, 8):le_int64()), id_text(cid), result_text(result))
  elseif kind == 3 then
    text = string.format("remove context %u", cid)
  elseif kind == 4 then
    text = "send " .. dissect_datagram(body, root) .. " = " .. result_text(result)
  elseif kind == 5 then
    text = "deliver " .. dissect_datagram(body, root)
  elseif kind == 6 then
    local h = add_handle(root, body(0, 8), f.handle_context, f.handle_resource)
    root:add_le(f.notify_index, body(8, 8))
    text = string.format("ring doorbell %s of context %u", h, cid)
  elseif kind == 7 then
    local h = add_handle(root, body(0, 8), f.handle_context, f.handle_resource)
    root:add_le(f.peer_context, body(8, 4))
    root:add_le(f.flags, body(12, 4))
    root:add_le(f.priv_flags, body(16, 4))
    root:add_le(f.produce_size, body(24, 8))
    root:add_le(f.consume_size, body(32, 8))
    local out = add_handle(root, body(40, 8), f.out_context, f.out_resource)
    text = string.format("qpair_alloc %s peer %u produce %s consume %s: %s %s", h,
                         body(8, 4):le_uint(), tostring(body(24, 8):le_uint64()),
                         tostring(body(32, 8):le_uint64()), out, result_text(result))
  elseif kind == 8 or kind == 10 or kind == 13 then
    local h = add_handle(root, body(0, 8), f.handle_context, f.handle_resource)
    text = string.format("%s %s: %s", kind_name, h, result_text(result))
  elseif kind == 9 then
    root:add_le(f.resource, body(0, 4))
    root:add_le(f.priv_flags, body(4, 4))
    root:add_le(f.notify_index, body(8, 8))
    local out = add_handle(root, body(16, 8), f.out_context, f.out_resource)
    text = string.format("doorbell_create %s: %s", out, result_text(result))
  elseif kind == 11 then
    local h = add_handle(root, body(0, 8), f.handle_context, f.handle_resource)
    root:add_le(f.priv_flags, body(8, 4))
    text = string.format("doorbell_notify %s: %s", h, result_text(result))
  elseif kind == 12 then
    root:add_le(f.resource, body(0, 4))
    root:add_le(f.flags, body(4, 4))
    root:add_le(f.priv_flags, body(8, 4))
    local out = add_handle(root, body(16, 8), f.out_context, f.out_resource)
    text = string.format("datagram_create_handle %s: %s", out, result_text(result))
  elseif kind == 14 then
    root:add_le(f.old_cid, body(0, 4))
    root:add_le(f.new_cid, body(4, 4))
    text = string.format("update_context_id %u -> %u: %s", body(0, 4):le_uint(),
                         body(4, 4):le_uint(), result_text(result))
  else
    text = kind_name
  end
  pinfo.cols.info = string.format("[%u] %s", cid, text)
  root:append_text(": " .. kind_name)
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, vmci)
