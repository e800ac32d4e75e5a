# Copyright 2026 The plangate Authors. Licensed under the Apache License 2.0.
"""ctypes declarations of include/plangate/c.h and the loaded library.

The structures mirror c.h field for field; keep them in step with it (the
struct layouts are part of the ABI of one major version, c.h convention 6).
The library is found, in order, at $PLANGATE_C_LIBRARY, by
ctypes.util.find_library("plangate_c"), or as libplangate_c.so.0 on the
dynamic loader's path.
"""

import ctypes
import ctypes.util
import os

c_char_p = ctypes.c_char_p
c_size_t = ctypes.c_size_t
c_int = ctypes.c_int
c_int64 = ctypes.c_int64
c_uint32 = ctypes.c_uint32
c_uint64 = ctypes.c_uint64
c_uchar = ctypes.c_ubyte
c_double = ctypes.c_double
c_void_p = ctypes.c_void_p

SONAME = "libplangate_c.so.0"


class MeterAmount(ctypes.Structure):
    _fields_ = [("meter", c_int), ("amount", c_int64)]


class Reservation(ctypes.Structure):
    _fields_ = [("slot", c_uint32), ("generation", c_uint32)]


class CheckRequest(ctypes.Structure):
    _fields_ = [
        ("account_id", c_char_p), ("account_id_len", c_size_t),
        ("project_id", c_char_p), ("project_id_len", c_size_t),
        ("key_id", c_char_p), ("key_id_len", c_size_t),
        ("user_id", c_char_p), ("user_id_len", c_size_t),
        ("key_kind", c_int),
        ("byok", c_uchar),
        ("model", c_char_p), ("model_len", c_size_t),
        ("features", ctypes.POINTER(c_char_p)),
        ("features_lens", ctypes.POINTER(c_size_t)),
        ("num_features", c_size_t),
        ("wallet_micros", c_int64),
        ("amounts", ctypes.POINTER(MeterAmount)), ("num_amounts", c_size_t),
        ("now_ms", c_int64),
        ("request_id", c_uint64),
    ]


class CommitRequest(ctypes.Structure):
    _fields_ = [
        ("reservation", Reservation),
        ("failed", c_uchar),
        ("actual", ctypes.POINTER(MeterAmount)), ("num_actual", c_size_t),
        ("set_wallet", c_uchar),
        ("wallet_micros", c_int64),
        ("request_id", c_uint64),
    ]


# Strings in a decision are pointer + length, not NUL-terminated: c_void_p.
class DecisionStruct(ctypes.Structure):
    _fields_ = [
        ("status", c_int),
        ("deny", c_int),
        ("reason", c_void_p), ("reason_len", c_size_t),
        ("message", c_void_p), ("message_len", c_size_t),
        ("warnings", c_uint32),
        ("shadow", c_uchar),
        ("has_limit", c_uchar),
        ("limit_id", c_void_p), ("limit_id_len", c_size_t),
        ("limit_scope", c_int),
        ("limit_meter", c_void_p), ("limit_meter_len", c_size_t),
        ("limit_window", c_int),
        ("limit_mode", c_int),
        ("limit_window_count", c_int),
        ("limit_value", c_int64),
        ("hard_limit", c_int64),
        ("used", c_int64),
        ("remaining", c_int64),
        ("window_start_ms", c_int64),
        ("reset_ms", c_int64),
        ("retry_after_ms", c_int64),
        ("upgrade_plan", c_void_p), ("upgrade_plan_len", c_size_t),
        ("reservation", Reservation),
    ]


class LimitOverride(ctypes.Structure):
    _fields_ = [
        ("limit_id", c_char_p), ("limit_id_len", c_size_t),
        ("user_id", c_char_p), ("user_id_len", c_size_t),
        ("unlimited", c_uchar),
        ("limit", c_int64),
        ("set_grace", c_uchar),
        ("grace", c_double),
    ]


class Account(ctypes.Structure):
    _fields_ = [
        ("account_id", c_char_p), ("account_id_len", c_size_t),
        ("plan_id", c_char_p), ("plan_id_len", c_size_t),
        ("anchor_ms", c_int64),
        ("state", c_int),
        ("past_due_deadline_ms", c_int64),
        ("scheduled_plan_id", c_char_p), ("scheduled_plan_id_len", c_size_t),
        ("default_model", c_char_p), ("default_model_len", c_size_t),
        ("overrides", ctypes.POINTER(LimitOverride)),
        ("num_overrides", c_size_t),
    ]


class EnforcerStats(ctypes.Structure):
    _fields_ = [(name, c_uint64) for name in (
        "subjects", "subject_capacity", "reservations_pending",
        "reservations_expired", "subjects_reclaimed", "capacity_denials",
        "unreserved_admits", "events_delivered", "events_dropped")]


class ThresholdEventStruct(ctypes.Structure):
    _fields_ = [
        ("kind", c_int),
        ("account_id", c_void_p), ("account_id_len", c_size_t),
        ("scope", c_int),
        ("subject_id", c_void_p), ("subject_id_len", c_size_t),
        ("limit_id", c_void_p), ("limit_id_len", c_size_t),
        ("window_start_ms", c_int64),
        ("window_end_ms", c_int64),
        ("used", c_int64),
        ("limit", c_int64),
    ]


class SyncStats(ctypes.Structure):
    _fields_ = ([("connected", c_uchar), ("redis_up", c_uchar)] +
                [(name, c_uint64) for name in (
                    "counters", "leased_counters", "rounds", "round_trips",
                    "commands", "retries", "errors", "timeouts",
                    "reconnects", "lease_grants", "lease_units",
                    "lease_returns", "units_flushed", "events_won",
                    "pending", "pending_dropped", "dirty_overflow")] +
                [("last_sync_age_ms", c_int64)])


CLOCK_FN = ctypes.CFUNCTYPE(c_int64, c_void_p)
EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p,
                            ctypes.POINTER(ThresholdEventStruct))

HTTP_HEADERS_SIZE = 1536
HTTP_BODY_SIZE = 2056

ERR = ctypes.POINTER(ctypes.c_char_p)


def _load():
    path = os.environ.get("PLANGATE_C_LIBRARY")
    if not path:
        path = ctypes.util.find_library("plangate_c") or SONAME
    return ctypes.CDLL(path)


lib = _load()

# (name, restype, argtypes)
_PROTOTYPES = [
    ("pg_version", c_char_p, []),
    ("pg_version_number", c_int, []),
    ("pg_free", None, [c_void_p]),
    ("pg_commit_result_name", c_char_p, [c_int]),
    ("pg_deny_reason", c_char_p, [c_int]),
    ("pg_decision_admitted", c_int, [ctypes.POINTER(DecisionStruct)]),
    ("pg_catalog_parse", c_void_p, [c_char_p, c_size_t, ctypes.POINTER(c_void_p)]),
    ("pg_catalog_load_file", c_void_p, [c_char_p, ctypes.POINTER(c_void_p)]),
    ("pg_catalog_destroy", None, [c_void_p]),
    ("pg_catalog_num_plans", c_size_t, [c_void_p]),
    ("pg_catalog_plan_id", c_char_p, [c_void_p, c_size_t]),
    ("pg_catalog_num_meters", c_size_t, [c_void_p]),
    ("pg_catalog_meter", c_char_p, [c_void_p, c_size_t]),
    ("pg_catalog_default_plan", c_char_p, [c_void_p]),
    ("pg_enforcer_options_create", c_void_p, []),
    ("pg_enforcer_options_destroy", None, [c_void_p]),
    ("pg_enforcer_options_set_reservation_ttl_ms", None, [c_void_p, c_int64]),
    ("pg_enforcer_options_set_idle_subject_ttl_ms", None, [c_void_p, c_int64]),
    ("pg_enforcer_options_set_max_subjects", None, [c_void_p, c_size_t]),
    ("pg_enforcer_options_set_max_reservations", None, [c_void_p, c_size_t]),
    ("pg_enforcer_options_set_event_queue_capacity", None, [c_void_p, c_size_t]),
    ("pg_enforcer_options_set_clock", None, [c_void_p, CLOCK_FN, c_void_p]),
    ("pg_enforcer_options_set_event_sink", None, [c_void_p, EVENT_FN, c_void_p]),
    ("pg_enforcer_create", c_void_p, [c_void_p, c_void_p, ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_destroy", None, [c_void_p]),
    ("pg_enforcer_reload_catalog", None, [c_void_p, c_void_p, ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_upsert_account", None,
     [c_void_p, ctypes.POINTER(Account), ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_update_wallet", c_int64,
     [c_void_p, c_char_p, c_size_t, c_int64, ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_credit_wallet", c_int64,
     [c_void_p, c_char_p, c_size_t, c_int64, c_char_p, c_size_t,
      ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_check", None,
     [c_void_p, ctypes.POINTER(CheckRequest), ctypes.POINTER(DecisionStruct)]),
    ("pg_enforcer_peek", None,
     [c_void_p, ctypes.POINTER(CheckRequest), ctypes.POINTER(DecisionStruct)]),
    ("pg_enforcer_commit", c_int, [c_void_p, ctypes.POINTER(CommitRequest)]),
    ("pg_enforcer_check_create", None,
     [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t, c_int64,
      ctypes.POINTER(DecisionStruct)]),
    ("pg_enforcer_meter_id", c_int, [c_void_p, c_char_p, c_size_t]),
    ("pg_enforcer_usage_json", c_void_p,
     [c_void_p, c_char_p, c_size_t, c_int64, ctypes.POINTER(c_size_t),
      ctypes.POINTER(c_void_p)]),
    ("pg_enforcer_maintain", None, [c_void_p, c_int64]),
    ("pg_enforcer_deliver_events", c_size_t, [c_void_p, c_int64]),
    ("pg_enforcer_stats", None, [c_void_p, ctypes.POINTER(EnforcerStats)]),
    ("pg_enforcer_prometheus_text", c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    ("pg_http_render", c_int,
     [ctypes.POINTER(DecisionStruct), c_int64, c_uint32, c_void_p, c_size_t,
      ctypes.POINTER(c_size_t), c_void_p, c_size_t, ctypes.POINTER(c_size_t),
      ctypes.POINTER(c_void_p)]),
    ("pg_http_error_type", c_char_p, [c_int]),
    ("pg_sync_options_create", c_void_p, []),
    ("pg_sync_options_destroy", None, [c_void_p]),
    ("pg_sync_options_set_key_prefix", None, [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_instance_id", None, [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_flush_interval_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_refresh_interval_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_max_batch", None, [c_void_p, c_size_t]),
    ("pg_sync_options_set_leases", None, [c_void_p, c_uchar]),
    ("pg_sync_options_set_expected_instances", None, [c_void_p, c_int]),
    ("pg_sync_options_set_min_round_units", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_cold_start_share", None, [c_void_p, c_double]),
    ("pg_sync_options_set_lease_ttl_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_unavailable_after_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_connect_timeout_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_command_timeout_ms", None, [c_void_p, c_int64]),
    ("pg_sync_options_set_redis_tls_ca_file", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_redis_tls_ca_dir", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_redis_tls_cert_file", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_redis_tls_key_file", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_redis_tls_server_name", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_options_set_redis_tls_verify", None, [c_void_p, c_uchar]),
    ("pg_sync_options_set_redis_sentinel_password", None,
     [c_void_p, c_char_p, c_size_t]),
    ("pg_sync_start", c_void_p,
     [c_void_p, c_char_p, c_void_p, ctypes.POINTER(c_void_p)]),
    ("pg_sync_destroy", None, [c_void_p]),
    ("pg_sync_flush", None, [c_void_p, c_int64, ctypes.POINTER(c_void_p)]),
    ("pg_sync_drain", None, [c_void_p, c_int64, ctypes.POINTER(c_void_p)]),
    ("pg_sync_stats", None, [c_void_p, ctypes.POINTER(SyncStats)]),
    ("pg_sync_prometheus_text", c_void_p, [c_void_p, ctypes.POINTER(c_size_t)]),
    ("pg_sync_instance_id", c_char_p, [c_void_p]),
    ("pg_sync_last_error", c_void_p, [c_void_p]),
]

for _name, _restype, _argtypes in _PROTOTYPES:
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


def take_string(ptr, length=None):
    """Decodes a malloc()ed string from the library and frees it."""
    if not ptr:
        return None
    try:
        if length is None:
            data = ctypes.string_at(ptr)
        else:
            data = ctypes.string_at(ptr, length)
        return data.decode("utf-8", "replace")
    finally:
        lib.pg_free(ptr)


def view(ptr, length):
    """A pointer-and-length string the library owns, as str."""
    if not ptr or length == 0:
        return ""
    return ctypes.string_at(ptr, length).decode("utf-8", "replace")
