// SPDX-License-Identifier: Apache-2.0
#include "software_tpm.h"

#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

namespace testing_support {
namespace {

// swtpm on loopback over DIR/state, logging to DIR/swtpm.log; returns its TCTI configuration.
std::string StartSwtpm(const std::string& dir, std::unique_ptr<Process>& swtpm) {
  // The swtpm TCTI always talks to the control channel on port + 1.
  int port = FreePort();
  while (port > 65000 || !PortIsFree(port + 1)) port = FreePort();
  swtpm = std::make_unique<Process>(
      std::vector<std::string>{"/usr/bin/swtpm", "socket", "--tpm2", "--server",
                               "type=tcp,port=" + std::to_string(port) + ",bindaddr=127.0.0.1", "--ctrl",
                               "type=tcp,port=" + std::to_string(port + 1) + ",bindaddr=127.0.0.1", "--tpmstate",
                               "dir=" + dir + "/state", "--flags", "not-need-init,startup-clear"},
      std::map<std::string, std::string>{}, dir + "/swtpm.log");
  if (!WaitForPort(port, std::chrono::seconds(10))) throw std::runtime_error("swtpm: " + ReadFile(dir + "/swtpm.log"));
  return "swtpm:host=127.0.0.1,port=" + std::to_string(port);
}

}  // namespace

SoftwareTpm::SoftwareTpm(const std::string& dir) {
  if (::access(kModule, R_OK) != 0) throw std::runtime_error("libtpm2-pkcs11-1 is not installed");
  if (::access("/usr/bin/swtpm", X_OK) != 0) throw std::runtime_error("swtpm is not installed");
  for (const std::string& d : {dir, dir + "/state", dir + "/store"}) ::mkdir(d.c_str(), 0700);
  std::string tcti = StartSwtpm(dir, swtpm_);
  env_ = {{"TPM2_PKCS11_TCTI", tcti}, {"TPM2_PKCS11_STORE", dir + "/store"}, {"TPM2TOOLS_TCTI", tcti},
          {"TSS2_LOG", "all+NONE"}};
  RunResult lockout = Run({"/usr/bin/tpm2_dictionarylockout", "--setup-parameters", "--max-tries=4294967295",
                           "--recovery-time=0", "--lockout-recovery-time=0", "--clear-lockout"},
                          {.env = env_});
  if (lockout.exit_code != 0) throw std::runtime_error("tpm2_dictionarylockout: " + lockout.err);
  pin_file = dir + "/pin";
  so_pin_file = dir + "/so.pin";
  WriteFile(pin_file, "2468\n", 0400);
  WriteFile(so_pin_file, "13571357\n", 0400);
  RunResult init = Run({Binary("etcd-hsm"), "init-token", "--module", kModule, "--label", "node", "--so-pin-file",
                        so_pin_file, "--pin-file", pin_file},
                       {.env = env_});
  if (init.exit_code != 0) throw std::runtime_error("etcd-hsm init-token: " + init.err);
}

TpmManufacturer::TpmManufacturer(const std::string& d) : dir(d) {
  ::mkdir(dir.c_str(), 0700);
  ::mkdir((dir + "/ca").c_str(), 0700);
  WriteFile(dir + "/localca.conf", "statedir = " + dir + "/ca\nsigningkey = " + dir + "/ca/signkey.pem\nissuercert = " +
                                       dir + "/ca/issuercert.pem\ncertserial = " + dir + "/ca/certserial\n");
  WriteFile(dir + "/localca.options", "--platform-manufacturer Debian\n--platform-version 2.1\n--platform-model swtpm\n");
  setup_conf = dir + "/swtpm_setup.conf";
  WriteFile(setup_conf, "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = " + dir +
                            "/localca.conf\ncreate_certs_tool_options = " + dir + "/localca.options\n");
}

std::string TpmManufacturer::RootsPem() const {
  return ReadFile(dir + "/ca/swtpm-localca-rootca-cert.pem") + ReadFile(dir + "/ca/issuercert.pem");
}

EndorsedTpm::EndorsedTpm(const std::string& dir, const TpmManufacturer& manufacturer) {
  if (::access("/usr/bin/swtpm_setup", X_OK) != 0) throw std::runtime_error("swtpm-tools is not installed");
  ::mkdir(dir.c_str(), 0700);
  ::mkdir((dir + "/state").c_str(), 0700);
  RunResult setup = Run({"/usr/bin/swtpm_setup", "--tpm2", "--tpmstate", dir + "/state", "--config",
                         manufacturer.setup_conf, "--create-ek-cert", "--overwrite"},
                        {.timeout = std::chrono::seconds(60)});
  if (setup.exit_code != 0) throw std::runtime_error("swtpm_setup: " + setup.out + setup.err);
  tcti_ = StartSwtpm(dir, swtpm_);
}

}  // namespace testing_support
