// SPDX-License-Identifier: Apache-2.0
// etcd-hsm's verbs on the token itself: init-token, keygen, list.
#include <cstdio>
#include <memory>
#include <optional>

#include "base/failure.h"
#include "base/files.h"
#include "etcd_hsm_verbs.h"
#include "hsm/ca_operations.h"
#include "hsm/session.h"
#include "pki/openssl.h"

namespace etcd_hsm {
namespace {

using base::ExitCode;
using base::Failure;

std::string HexId(const std::vector<unsigned char>& id) {
  return id.empty() ? "-" : pki::Hex(id.data(), id.size());
}

std::string Flag(const std::optional<bool>& v) { return !v ? "?" : *v ? "yes" : "no"; }

hsm::TokenSelector Selector(const std::string& token, const std::string& serial) {
  hsm::TokenSelector selector;
  if (!token.empty()) selector.label = token;
  if (!serial.empty()) selector.serial = serial;
  return selector;
}

struct InitTokenFlags {
  std::string module, label, so_pin_file;
  hsm::PinSource pin;
};

int InitToken(const InitTokenFlags& f) {
  std::string so_pin = base::ReadSecretFile(f.so_pin_file);
  std::string user_pin = hsm::ReadPin(f.pin);
  hsm::Module m(f.module);
  std::string new_serial = hsm::InitToken(m, f.label, so_pin, user_pin);
  base::Scrub(so_pin);
  base::Scrub(user_pin);
  std::printf("initialized token '%s' (serial %s)\n", f.label.c_str(), new_serial.c_str());
  return 0;
}

struct KeygenFlags {
  std::string module, token, serial, label, type = "ec-p256";
  hsm::PinSource pin;
};

int Keygen(const KeygenFlags& f) {
  if (f.token.empty() && f.serial.empty()) {
    throw Failure(ExitCode::kUsage, "usage", "keygen needs --token LABEL or --serial SERIAL");
  }
  hsm::KeyType key_type = hsm::ParseKeyType(f.type);
  hsm::Module m(f.module);
  hsm::Session session(m, Selector(f.token, f.serial), true);
  session.LoginWith(f.pin);
  auto id = session.GenerateKeyPair(key_type, f.label);
  std::printf("generated %s key '%s' (id %s) in token '%s': sensitive, never extractable, sign only\n",
              f.type.c_str(), f.label.c_str(), HexId(id).c_str(), session.token().label.c_str());
  std::printf("uri: pkcs11:token=%s;object=%s;type=private\n", session.token().label.c_str(), f.label.c_str());
  return 0;
}

struct ListFlags {
  std::string module, token, serial;
  hsm::PinSource pin;
};

void ListTokens(hsm::Module& m) {
  std::printf("%-32s %-18s %-12s %s\n", "TOKEN", "SERIAL", "USER PIN", "MANUFACTURER/MODEL");
  for (const auto& t : m.Tokens()) {
    if (!t.initialized) continue;
    std::string state = t.user_pin_locked ? "locked" : t.user_pin_final_try ? "final-try"
                        : t.user_pin_initialized ? "set" : "not set";
    std::printf("%-32s %-18s %-12s %s / %s\n", t.label.c_str(), t.serial.c_str(), state.c_str(),
                t.manufacturer.c_str(), t.model.c_str());
  }
}

void ListObjects(hsm::Module& m, const ListFlags& f) {
  hsm::Session session(m, Selector(f.token, f.serial), false);
  if (!f.pin.file.empty() || !f.pin.env_name.empty()) session.LoginWith(f.pin);
  std::printf("%-12s %-20s %-34s %-10s %-9s %-11s %-6s %s\n", "CLASS", "LABEL", "ID", "TYPE", "SENSITIVE",
              "EXTRACTABLE", "SIGN", "NEVER-EXTRACTABLE");
  for (const auto& o : session.Objects()) {
    std::printf("%-12s %-20s %-34s %-10s %-9s %-11s %-6s %s\n", o.object_class.c_str(), o.label.c_str(),
                HexId(o.id).c_str(), o.key_type.c_str(), Flag(o.attributes.sensitive).c_str(),
                Flag(o.attributes.extractable).c_str(), Flag(o.attributes.sign).c_str(),
                Flag(o.attributes.never_extractable).c_str());
  }
}

int List(const ListFlags& f) {
  hsm::Module m(f.module);
  if (f.token.empty() && f.serial.empty()) {
    ListTokens(m);
  } else {
    ListObjects(m, f);
  }
  return 0;
}

}  // namespace

VerbRun DefineInitToken(base::Flags& cmd) {
  auto f = std::make_shared<InitTokenFlags>();
  cmd.Option("--module", f->module, "PKCS#11 module path").Required();
  cmd.Option("--label", f->label, "Token label (1-32 characters)").Required();
  cmd.Option("--so-pin-file", f->so_pin_file, "File holding the security officer PIN").Required();
  AddPinOptions(cmd, f->pin);
  return [f](const Context&) { return InitToken(*f); };
}

VerbRun DefineKeygen(base::Flags& cmd) {
  auto f = std::make_shared<KeygenFlags>();
  cmd.Option("--module", f->module, "PKCS#11 module path").Required();
  cmd.Option("--token", f->token, "Token label");
  cmd.Option("--serial", f->serial, "Token serial number");
  cmd.Option("--label", f->label, "Key label (CKA_LABEL), unique in the token").Required();
  cmd.Option("--type", f->type, "ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096").ShowDefault();
  AddPinOptions(cmd, f->pin);
  return [f](const Context&) { return Keygen(*f); };
}

VerbRun DefineList(base::Flags& cmd) {
  auto f = std::make_shared<ListFlags>();
  cmd.Option("--module", f->module, "PKCS#11 module path").Required();
  cmd.Option("--token", f->token, "Token label: list its objects");
  cmd.Option("--serial", f->serial, "Token serial: list its objects");
  AddPinOptions(cmd, f->pin);
  return [f](const Context&) { return List(*f); };
}

}  // namespace etcd_hsm
