// SPDX-License-Identifier: Apache-2.0
// Built into every binary of the sanitizer build only (ETCD_SIGNER_SANITIZE). The sanitizer
// runtimes call these hooks at startup, so the options hold wherever a binary runs — including
// etcd-signer started by sshd with a clean environment.
#include "lsan_suppressions.h"

extern "C" {

// verify_asan_link_order=0: the clock-skew tests run programs under libfaketime (LD_PRELOAD), which
// would otherwise stop ASan at startup. detect_leaks stays on: a leak fails the test that ran it.
// fast_unwind_on_malloc: libcrypto and libp11 are built without frame pointers, so the fast unwinder
// stops inside them and a suppression naming libp11 cannot match the stack. Only etcd-requester
// needs the full (DWARF) unwind: it loads tpm2-pkcs11, whose keys make libp11 keep ASN1 strings
// for good (a stack of libcrypto frames only, unattributable without it). Every other program
// unwinds fast: the full unwind of every allocation in every program cost the sanitizer pass's
// tests 382 s instead of 296 s on 2 cores (#30).
#if defined(ETCD_SIGNER_FULL_MALLOC_STACKS)
#define ETCD_SIGNER_MALLOC_UNWIND "fast_unwind_on_malloc=0"
#else
#define ETCD_SIGNER_MALLOC_UNWIND "fast_unwind_on_malloc=1"
#endif
const char* __asan_default_options() {
  return "verify_asan_link_order=0:detect_leaks=1:" ETCD_SIGNER_MALLOC_UNWIND ":strict_string_checks=1";
}

const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }

const char* __lsan_default_suppressions() { return kLsanSuppressions; }

}  // extern "C"
