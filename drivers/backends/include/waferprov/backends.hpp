// The backend registry: every accelerator the build has, by name, with its parameters.
//
//   software   the OpenSSL software engine      device_key=FILE
//   verilator  the card driver over a Verilated  engines=N (the configurations built),
//              card clocked in-process           device_key=FILE (the simulated card's DK)
//   xdma       the card driver over the Xilinx   device=PREFIX (default /dev/xdma0: the nodes
//              XDMA driver's nodes (a real card  PREFIX_user, _h2c_0, _c2h_0, _events_0),
//              on PCIe, or waferprov-cardsim)    timeout_ms=N (register commands and the base
//                                                of a batch's deadline, default 5000),
//                                                per_die_us=N (added per die, default 100),
//                                                device_key=FILE (only to wrap KIKs on the
//                                                host: the card carries its own DK)
//
// A backend is named on the command line as a spec, "NAME[:KEY=VALUE[,KEY=VALUE...]]"
// (`--backend verilator:engines=2`), and in a job file as [job] backend plus a [backend] table
// (docs/jobs.md). Nothing in host/ names a concrete backend: it goes through this registry.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "waferprov/accelerator.hpp"

namespace waferprov {

struct BackendOptions {
    std::string name = "software";
    // Per-backend parameters (see above). A parameter the backend does not take is refused by
    // name. device_key: the device key file (0600, 64 hex digits); without one, development
    // builds use the published test device key and production builds refuse.
    std::map<std::string, std::string> params;
};

// Names of the backends compiled into this build, default first.
std::vector<std::string> available_backends();

// The parameters a backend takes (kNotFound for an unknown backend).
Result<std::vector<std::string>> backend_params(const std::string& name);

// "verilator:engines=2,device_key=dk.key" -> {verilator, {engines: 2, device_key: dk.key}}.
// kInvalidArgument names what is malformed.
Result<BackendOptions> parse_backend_spec(const std::string& spec);

// Creates the named backend; kNotFound names the backends that exist, kInvalidArgument a
// parameter it does not take or a bad value.
Result<std::unique_ptr<Accelerator>> make_backend(const BackendOptions& options);

// The device key that KIKs for this backend are wrapped under, as far as the host may know it:
// the device_key file when one is given, else the development test key (development builds
// only). Used by `job init` and by the KAT runner, which loads the plain KIKs of test files the
// way a job does.
Result<SecretArray<32>> device_key_for(const BackendOptions& options);

// AES-KW(DK, KIK) for the backend's device key (device_key_for): the 40 bytes its load_kik
// takes. Computed on the host with the software engine's key wrap, never on the backend, so a
// backend without self-test primitives (a card) can still be given a KIK.
Result<Bytes> wrap_kik_for(const BackendOptions& options, ByteSpan kik);

// For `job init`: a fresh random device key file for the backend in `dir` (device.key, 0600)
// when the backend's device key is the host's to choose (software, verilator), returned as the
// options' device_key parameter. A card on PCIe (xdma) carries its own DK: the options come
// back unchanged (no device_key unless the caller gave one; wrap_kik_for then uses the
// development test key, which the emulated card carries).
Result<BackendOptions> create_device_key(BackendOptions options, const std::filesystem::path& dir);

}  // namespace waferprov
