// SPDX-License-Identifier: Apache-2.0
#include "hsm/session.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <sys/random.h>

#include <cstring>

#include "base/failure.h"
#include "base/files.h"
#include "hsm/error.h"
#include "internal.h"
#include "pki/key.h"

namespace hsm {
namespace {

using base::ExitCode;
using base::Failure;

using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, pki::OpenSslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, pki::OpenSslDeleter<OSSL_PARAM_free>>;
using Asn1ObjectPtr = std::unique_ptr<ASN1_OBJECT, pki::OpenSslDeleter<ASN1_OBJECT_free>>;

// DER OIDs for CKA_EC_PARAMS.
const unsigned char kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const unsigned char kP384Oid[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

std::string ClassName(CK_OBJECT_CLASS c) {
  switch (c) {
    case CKO_PRIVATE_KEY: return "private-key";
    case CKO_PUBLIC_KEY: return "public-key";
    case CKO_CERTIFICATE: return "certificate";
    case CKO_SECRET_KEY: return "secret-key";
    case CKO_DATA: return "data";
    default: return "other";
  }
}

}  // namespace

struct Session::Impl {
  Module::Impl* module = nullptr;
  PKCS11_SLOT* slot = nullptr;
  CK_SESSION_HANDLE handle = CK_INVALID_HANDLE;
  TokenInfo info;
  bool logged_in = false;

  CK_FUNCTION_LIST* f() const { return module->functions; }

  std::vector<CK_OBJECT_HANDLE> Find(std::vector<CK_ATTRIBUTE> tmpl) {
    CK_RV rv = f()->C_FindObjectsInit(handle, tmpl.empty() ? nullptr : tmpl.data(), tmpl.size());
    if (rv != CKR_OK) ThrowCkr("C_FindObjectsInit", rv);
    std::vector<CK_OBJECT_HANDLE> out;
    for (;;) {
      CK_OBJECT_HANDLE batch[64];
      CK_ULONG n = 0;
      rv = f()->C_FindObjects(handle, batch, 64, &n);
      if (rv != CKR_OK) {
        f()->C_FindObjectsFinal(handle);
        ThrowCkr("C_FindObjects", rv);
      }
      if (n == 0) break;
      out.insert(out.end(), batch, batch + n);
      if (out.size() > 100000) break;
    }
    f()->C_FindObjectsFinal(handle);
    return out;
  }

  // Attribute reads are most of the cost of a key lookup: SoftHSM re-reads its object file on every
  // C_GetAttributeValue. So values are read into a scratch buffer in one call (the two-call
  // size-then-value form only for values that do not fit), and several attributes at once.
  static constexpr CK_ULONG kScratch = 1024;  // an RSA-8192 modulus; labels, ids, EC points

  std::optional<std::vector<unsigned char>> Bytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    return Many(object, {type}).front();
  }

  // Values of `types` in order (nullopt: absent, sensitive or unreadable). One call when the
  // token answers as PKCS#11 says (CKR_OK, or one of the three codes that still fill every
  // other attribute); otherwise, and for values above kScratch, attribute by attribute.
  std::vector<std::optional<std::vector<unsigned char>>> Many(CK_OBJECT_HANDLE object,
                                                              const std::vector<CK_ATTRIBUTE_TYPE>& types) {
    std::vector<std::vector<unsigned char>> buffers(types.size(), std::vector<unsigned char>(kScratch));
    std::vector<CK_ATTRIBUTE> tmpl;
    for (std::size_t i = 0; i < types.size(); ++i) tmpl.push_back({types[i], buffers[i].data(), kScratch});
    CK_RV rv = f()->C_GetAttributeValue(handle, object, tmpl.data(), tmpl.size());
    bool filled = rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
                  rv == CKR_BUFFER_TOO_SMALL;
    std::vector<std::optional<std::vector<unsigned char>>> out(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) {
      if (filled && tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION) {
        buffers[i].resize(tmpl[i].ulValueLen);
        out[i] = std::move(buffers[i]);
      } else if (!filled || rv == CKR_BUFFER_TOO_SMALL) {
        out[i] = SizedBytes(object, types[i]);
      }
    }
    return out;
  }

  // The two-call form: ask for the size, then the value.
  std::optional<std::vector<unsigned char>> SizedBytes(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    if (f()->C_GetAttributeValue(handle, object, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
      return std::nullopt;
    }
    std::vector<unsigned char> value(a.ulValueLen);
    a.pValue = value.data();
    if (f()->C_GetAttributeValue(handle, object, &a, 1) != CKR_OK) return std::nullopt;
    value.resize(a.ulValueLen);
    return value;
  }

  static std::optional<bool> AsBool(const std::optional<std::vector<unsigned char>>& v) {
    if (!v || v->size() != sizeof(CK_BBOOL)) return std::nullopt;
    return (*v)[0] != CK_FALSE;
  }

  std::optional<CK_ULONG> Ulong(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) {
    auto v = Bytes(object, type);
    if (!v || v->size() != sizeof(CK_ULONG)) return std::nullopt;
    CK_ULONG out;
    std::memcpy(&out, v->data(), sizeof out);
    return out;
  }

  KeyAttributes Attributes(CK_OBJECT_HANDLE o) {
    auto v = Many(o, {CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
                      CKA_NEVER_EXTRACTABLE, CKA_SIGN, CKA_DECRYPT, CKA_DERIVE, CKA_UNWRAP});
    KeyAttributes a;
    a.token = AsBool(v[0]);
    a.is_private = AsBool(v[1]);
    a.sensitive = AsBool(v[2]);
    a.extractable = AsBool(v[3]);
    a.always_sensitive = AsBool(v[4]);
    a.never_extractable = AsBool(v[5]);
    a.sign = AsBool(v[6]);
    a.decrypt = AsBool(v[7]);
    a.derive = AsBool(v[8]);
    a.unwrap = AsBool(v[9]);
    return a;
  }

  // The public half of a key object as an OpenSSL key (nullptr when the object lacks it).
  pki::EvpPkeyPtr PublicKey(CK_OBJECT_HANDLE o) {
    auto type = Ulong(o, CKA_KEY_TYPE);
    if (!type) return nullptr;
    ParamBldPtr bld(OSSL_PARAM_BLD_new());
    const char* algorithm = nullptr;
    std::vector<unsigned char> point;
    std::string group;
    pki::BignumPtr n, e;
    if (*type == CKK_EC) {
      auto values = Many(o, {CKA_EC_PARAMS, CKA_EC_POINT});
      auto& params = values[0];
      auto& raw_point = values[1];
      if (!params || !raw_point) return nullptr;
      const unsigned char* p = params->data();
      Asn1ObjectPtr oid(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params->size())));
      int nid = oid ? OBJ_obj2nid(oid.get()) : NID_undef;
      if (nid == NID_undef) return nullptr;
      group = OBJ_nid2sn(nid);
      // CKA_EC_POINT is a DER OCTET STRING holding the point (PKCS#11 2.40); some tokens
      // give the bare point.
      const unsigned char* q = raw_point->data();
      pki::Asn1OctetStringPtr os(
          d2i_ASN1_OCTET_STRING(nullptr, &q, static_cast<long>(raw_point->size())));
      if (os && q == raw_point->data() + raw_point->size()) {
        point.assign(ASN1_STRING_get0_data(os.get()),
                     ASN1_STRING_get0_data(os.get()) + ASN1_STRING_length(os.get()));
      } else {
        point = *raw_point;
      }
      ERR_clear_error();
      algorithm = "EC";
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group.c_str(), 0);
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size());
    } else if (*type == CKK_RSA) {
      auto values = Many(o, {CKA_MODULUS, CKA_PUBLIC_EXPONENT});
      auto& modulus = values[0];
      auto& exponent = values[1];
      if (!modulus || !exponent) return nullptr;
      n.reset(BN_bin2bn(modulus->data(), static_cast<int>(modulus->size()), nullptr));
      e.reset(BN_bin2bn(exponent->data(), static_cast<int>(exponent->size()), nullptr));
      algorithm = "RSA";
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    } else {
      return nullptr;
    }
    ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    pki::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, algorithm, nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
      ERR_clear_error();
      return nullptr;
    }
    return pki::EvpPkeyPtr(key);
  }
};

KeyType ParseKeyType(const std::string& name) {
  if (name == "ec-p256") return KeyType::kEcP256;
  if (name == "ec-p384") return KeyType::kEcP384;
  if (name == "rsa-2048") return KeyType::kRsa2048;
  if (name == "rsa-3072") return KeyType::kRsa3072;
  if (name == "rsa-4096") return KeyType::kRsa4096;
  throw Failure(ExitCode::kUsage, "bad-key-type",
                "key type '" + name + "' is not one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096");
}

Session::Session(Module& module, const TokenSelector& selector, bool read_write)
    : impl_(std::make_unique<Impl>()) {
  Module::Impl& m = module.impl();
  impl_->module = &m;
  m.EnsureSlots();
  std::vector<PKCS11_SLOT*> matches;
  std::string present;
  for (unsigned int i = 0; i < m.slot_count; ++i) {
    PKCS11_SLOT* slot = &m.slots[i];
    if (slot->token == nullptr || !slot->token->initialized) continue;
    std::string label = slot->token->label;
    std::string serial = slot->token->serialnr;
    present += (present.empty() ? "" : ", ") + ("'" + label + "' (serial " + serial + ")");
    if (selector.label && *selector.label != label) continue;
    if (selector.serial && *selector.serial != serial) continue;
    matches.push_back(slot);
  }
  if (matches.empty()) {
    throw Failure(ExitCode::kUnavailable, "token-not-found",
                  "no token with " + selector.ToString() + " in " + m.path +
                      (present.empty() ? " (no initialized token at all)"
                                       : " (present: " + present + ")"));
  }
  if (matches.size() > 1) {
    throw Failure(ExitCode::kUnavailable, "token-ambiguous",
                  "several tokens match " + selector.ToString() + "; add serial= to choose one");
  }
  PKCS11_SLOT* slot = matches.front();
  impl_->slot = slot;
  PKCS11_TOKEN* t = slot->token;
  impl_->info.label = t->label;
  impl_->info.serial = t->serialnr;
  impl_->info.manufacturer = t->manufacturer;
  impl_->info.model = t->model;
  impl_->info.initialized = t->initialized != 0;
  impl_->info.user_pin_initialized = t->userPinSet != 0;
  impl_->info.user_pin_locked = t->userPinLocked != 0;
  impl_->info.user_pin_final_try = t->userPinFinalTry != 0;
  // libp11 wants its session mode fixed before login (read-write for key generation).
  if (PKCS11_open_session(slot, read_write ? 1 : 0) != 0) ThrowLibp11("C_OpenSession");
  CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
  CK_RV rv = impl_->f()->C_OpenSession(PKCS11_get_slotid_from_slot(slot), flags, nullptr, nullptr,
                                       &impl_->handle);
  if (rv != CKR_OK) ThrowCkr("C_OpenSession", rv);
}

Session::Session(Session&&) noexcept = default;

Session::~Session() {
  if (impl_ && impl_->handle != CK_INVALID_HANDLE) impl_->f()->C_CloseSession(impl_->handle);
}

const TokenInfo& Session::token() const { return impl_->info; }

void Session::LoginWith(const PinSource& source, const Pkcs11Uri* uri) {
  std::string pin = ReadPin(source, uri);
  try {
    Login(pin);
  } catch (...) {
    base::Scrub(pin);
    throw;
  }
  base::Scrub(pin);
}

void Session::Login(const std::string& pin) {
  if (impl_->logged_in) return;
  if (impl_->info.user_pin_locked) {
    throw Failure(ExitCode::kUnavailable, "pin-locked",
                  "the user PIN of token '" + impl_->info.label +
                      "' is locked; the token officer must reset it");
  }
  // One attempt only: tokens count wrong PINs towards a lockout.
  if (PKCS11_login(impl_->slot, 0, pin.c_str()) != 0) ThrowLibp11("C_Login");
  impl_->logged_in = true;
}

std::vector<ObjectInfo> Session::Objects() {
  std::vector<ObjectInfo> out;
  for (CK_OBJECT_HANDLE o : impl_->Find({})) {
    ObjectInfo info;
    auto klass = impl_->Ulong(o, CKA_CLASS);
    info.object_class = klass ? ClassName(*klass) : "unknown";
    auto label = impl_->Bytes(o, CKA_LABEL);
    if (label) info.label.assign(label->begin(), label->end());
    auto id = impl_->Bytes(o, CKA_ID);
    if (id) info.id = *id;
    if (klass && (*klass == CKO_PRIVATE_KEY || *klass == CKO_PUBLIC_KEY)) {
      info.attributes = impl_->Attributes(o);
      auto pub = impl_->PublicKey(o);
      if (pub) {
        info.key_type = pki::DescribeKey(pub.get()).name;
      } else if (auto type = impl_->Ulong(o, CKA_KEY_TYPE)) {
        info.key_type = *type == CKK_EC ? "EC" : *type == CKK_RSA ? "RSA" : "other";
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

TokenKey Session::FindPrivateKey(const std::optional<std::string>& label,
                                 const std::optional<std::vector<unsigned char>>& id) {
  if (!label && !id) {
    throw Failure(ExitCode::kUsage, "bad-uri", "the key URI names neither object= nor id=");
  }
  CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
  std::vector<CK_ATTRIBUTE> tmpl{{CKA_CLASS, &priv, sizeof priv}};
  std::string label_copy = label.value_or("");
  std::vector<unsigned char> id_copy = id.value_or(std::vector<unsigned char>{});
  if (label) tmpl.push_back({CKA_LABEL, label_copy.data(), label_copy.size()});
  if (id) tmpl.push_back({CKA_ID, id_copy.data(), id_copy.size()});
  auto found = impl_->Find(tmpl);
  std::string what = label ? "object '" + *label + "'" : "the given id";
  if (found.empty()) {
    throw Failure(ExitCode::kUnavailable, "key-not-found",
                  "no private key with " + what + " in token '" + impl_->info.label +
                      (impl_->logged_in ? "'" : "' (not logged in: is the PIN given?)"));
  }
  if (found.size() > 1) {
    throw Failure(ExitCode::kUnavailable, "key-ambiguous",
                  "several private keys match " + what + "; name the key by id=");
  }
  CK_OBJECT_HANDLE o = found.front();
  TokenKey key;
  auto names = impl_->Many(o, {CKA_LABEL, CKA_ID});
  if (names[0]) key.label.assign(names[0]->begin(), names[0]->end());
  key.id = names[1].value_or(std::vector<unsigned char>{});
  key.attributes = impl_->Attributes(o);
  if (!key.id.empty()) {
    CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
    auto pubs = impl_->Find(
        {{CKA_CLASS, &pub, sizeof pub}, {CKA_ID, key.id.data(), key.id.size()}});
    if (pubs.size() == 1) key.public_key = impl_->PublicKey(pubs.front());
  }
  if (!key.public_key) key.public_key = impl_->PublicKey(o);
  if (!key.public_key) {
    throw Failure(ExitCode::kUnavailable, "key-not-found",
                  "the private key " + what + " has no public key object with the same CKA_ID");
  }
  // The signing handle comes from libp11, matched by CKA_ID (labels need not be unique).
  PKCS11_KEY* keys = nullptr;
  unsigned int count = 0;
  if (PKCS11_enumerate_keys(impl_->slot->token, &keys, &count) != 0) {
    ThrowLibp11("C_FindObjects");
  }
  for (unsigned int i = 0; i < count; ++i) {
    PKCS11_KEY* k = &keys[i];
    bool same_id = k->id_len == key.id.size() &&
                   (key.id.empty() || std::memcmp(k->id, key.id.data(), k->id_len) == 0);
    bool same_label = k->label != nullptr && key.label == k->label;
    if (k->isPrivate && same_id && (!key.id.empty() || same_label)) {
      key.private_key.reset(PKCS11_get_private_key(k));
      break;
    }
  }
  if (!key.private_key) {
    throw Failure(ExitCode::kUnavailable, "key-not-found",
                  "libp11 cannot use the private key " + what + " (" +
                      pki::DrainOpenSslErrors() + ")");
  }
  return key;
}

std::vector<unsigned char> Session::GenerateKeyPair(KeyType type, const std::string& label) {
  if (label.empty() || label.size() > 128) {
    throw Failure(ExitCode::kUsage, "bad-label", "a key label must have 1 to 128 characters");
  }
  std::string label_copy = label;
  if (!impl_->Find({{CKA_LABEL, label_copy.data(), label_copy.size()}}).empty()) {
    throw Failure(ExitCode::kCantCreate, "key-exists",
                  "token '" + impl_->info.label + "' already has an object labelled '" + label +
                      "'; choose another label (keys are never overwritten)");
  }
  std::vector<unsigned char> id(16);
  if (getrandom(id.data(), id.size(), 0) != static_cast<ssize_t>(id.size())) {
    throw Failure(ExitCode::kSoftware, "internal", "getrandom failed");
  }
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
  CK_KEY_TYPE key_type = (type == KeyType::kEcP256 || type == KeyType::kEcP384) ? CKK_EC : CKK_RSA;
  CK_ULONG bits = type == KeyType::kRsa2048 ? 2048 : type == KeyType::kRsa3072 ? 3072 : 4096;
  CK_BYTE exponent[] = {0x01, 0x00, 0x01};
  std::vector<unsigned char> curve = type == KeyType::kEcP256
                                         ? std::vector<unsigned char>(std::begin(kP256Oid), std::end(kP256Oid))
                                         : std::vector<unsigned char>(std::begin(kP384Oid), std::end(kP384Oid));
  std::vector<CK_ATTRIBUTE> pub{
      {CKA_CLASS, &pub_class, sizeof pub_class}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_TOKEN, &yes, sizeof yes},             {CKA_PRIVATE, &no, sizeof no},
      {CKA_WRAP, &no, sizeof no},                {CKA_LABEL, label_copy.data(), label_copy.size()},
      {CKA_ID, id.data(), id.size()}};
  // CKA_VERIFY/CKA_ENCRYPT are left to the token: tpm2-pkcs11 derives them from the TPM object
  // and refuses a template that states them differently; a public key's uses grant nothing.
  std::vector<CK_ATTRIBUTE> priv{
      {CKA_CLASS, &priv_class, sizeof priv_class}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
      {CKA_TOKEN, &yes, sizeof yes},               {CKA_PRIVATE, &yes, sizeof yes},
      {CKA_SENSITIVE, &yes, sizeof yes},           {CKA_EXTRACTABLE, &no, sizeof no},
      {CKA_SIGN, &yes, sizeof yes},                {CKA_DECRYPT, &no, sizeof no},
      {CKA_UNWRAP, &no, sizeof no},                {CKA_DERIVE, &no, sizeof no},
      {CKA_LABEL, label_copy.data(), label_copy.size()}, {CKA_ID, id.data(), id.size()}};
  CK_MECHANISM mechanism{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  if (key_type == CKK_EC) {
    pub.push_back({CKA_EC_PARAMS, curve.data(), curve.size()});
  } else {
    mechanism.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
    pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
    pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
  }
  CK_OBJECT_HANDLE pub_handle = CK_INVALID_HANDLE, priv_handle = CK_INVALID_HANDLE;
  CK_RV rv = impl_->f()->C_GenerateKeyPair(impl_->handle, &mechanism, pub.data(), pub.size(),
                                           priv.data(), priv.size(), &pub_handle, &priv_handle);
  if (rv != CKR_OK) ThrowCkr("C_GenerateKeyPair", rv);
  return id;
}

std::string InitToken(Module& module, const std::string& label, const std::string& so_pin,
                      const std::string& user_pin) {
  if (label.empty() || label.size() > 32) {
    throw Failure(ExitCode::kUsage, "bad-label", "a token label must have 1 to 32 characters");
  }
  CK_FUNCTION_LIST* f = module.impl().functions;
  auto slots = [&module] { return module.impl().TokenSlotIds(); };
  std::optional<CK_SLOT_ID> free_slot;
  for (CK_SLOT_ID id : slots()) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(id, &info) != CKR_OK) continue;
    bool initialized = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
    if (initialized && FixedString(info.label, sizeof info.label) == label) {
      throw Failure(ExitCode::kCantCreate, "token-exists",
                    "a token labelled '" + label + "' already exists; tokens are never re-initialized by this tool");
    }
    if (!initialized && !free_slot) free_slot = id;
  }
  if (!free_slot) {
    throw Failure(ExitCode::kUnavailable, "no-free-slot",
                  "the module has no slot with an uninitialized token");
  }
  unsigned char padded[32];
  std::memset(padded, ' ', sizeof padded);
  std::memcpy(padded, label.data(), label.size());
  std::string so = so_pin, user = user_pin;
  CK_RV rv = f->C_InitToken(*free_slot, reinterpret_cast<CK_UTF8CHAR*>(so.data()), so.size(), padded);
  if (rv != CKR_OK) ThrowCkr("C_InitToken", rv);
  // SoftHSM gives the initialized token a new slot id: look it up again, by label.
  std::optional<CK_SLOT_ID> slot;
  std::string serial;
  for (CK_SLOT_ID id : slots()) {
    CK_TOKEN_INFO info{};
    if (f->C_GetTokenInfo(id, &info) != CKR_OK) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) && FixedString(info.label, sizeof info.label) == label) {
      slot = id;
      serial = FixedString(info.serialNumber, sizeof info.serialNumber);
    }
  }
  if (!slot) throw Failure(ExitCode::kUnavailable, "token-not-found", "the new token vanished");
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  rv = f->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h);
  if (rv != CKR_OK) ThrowCkr("C_OpenSession", rv);
  rv = f->C_Login(h, CKU_SO, reinterpret_cast<CK_UTF8CHAR*>(so.data()), so.size());
  if (rv == CKR_OK) {
    rv = f->C_InitPIN(h, reinterpret_cast<CK_UTF8CHAR*>(user.data()), user.size());
    f->C_Logout(h);
  }
  f->C_CloseSession(h);
  base::Scrub(so);
  base::Scrub(user);
  if (rv != CKR_OK) ThrowCkr("C_InitPIN", rv);
  return serial;
}

}  // namespace hsm
