# Thin wrapper around CMake presets. The two set-up commands are `make run`
# and `make test`; both install missing Debian 12 packages first.
SHELL := /bin/bash
JOBS ?= $(shell nproc)

# Packages this tree builds and tests with (Debian 12, --no-install-recommends).
PACKAGES := build-essential cmake pkg-config g++ clang-14 libclang-rt-14-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libmbedtls-dev nlohmann-json3-dev \
  libcli11-dev python3 openssl tshark softhsm2 opensc p11-kit libp11-kit-dev \
  curl libsrtp2-dev gdb \
  dpkg-dev file lintian systemd man-db adduser

.PHONY: all deps build release release-check test test-debug test-asan fuzz fuzz-run bench bench-hostile fault-campaign soak run deb clean

all: build

# Installs whatever is missing. Needs root (or sudo) the first time only.
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== installing: $$missing"; \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo 'wireshark-common wireshark-common/install-setuid boolean false' | $$SUDO debconf-set-selections; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

build: deps
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)

release: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

test-debug: deps
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)
	ctest --preset debug

test-asan: deps
	cmake --preset asan-ubsan
	cmake --build --preset asan-ubsan -j $(JOBS)
	ctest --preset asan-ubsan

# The whole suite in the normal (g++) build and in the ASan+UBSan (clang-14)
# build; the optimised release build (benchmarks included) must compile too.
test: test-debug test-asan release-check

# The optimised build of the whole tree (g++ -O3 finds warnings the debug
# build does not): every target of the release preset must compile, tests
# and benchmarks included; the tests themselves run in the two presets above.
release-check: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# libFuzzer binaries (clang-14). FUZZERS is every tkms_fuzz() target, ordered
# by exposure: network-facing parsers first, then configuration, then the
# client-side and tool parsers (docs/fuzzing.md).
FUZZERS := web_http1_head_fuzz web_http_framing_fuzz web_chunked_fuzz web_annex_a_fuzz \
  mikey_codec_fuzz kms_handle_fuzz kms_zk_fuzz zk_identity_fuzz provisioning_bundle_fuzz \
  mikey_keydata_fuzz mikey_base_ticket_fuzz base64_fuzz bounded_json_fuzz \
  provisioning_config_fuzz pkcs11_uri_fuzz \
  ue_http_response_fuzz ue_response_fuzz ue_transfer_fuzz ue_sdp_fuzz rtp_parse_fuzz \
  ue_state_fuzz tkmsctl_input_fuzz tkmsctl_json_fuzz

fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)

# The fuzzing campaign (docs/fuzzing.md, "Campaign"), measured in CPU time:
# tools/fuzz/run_campaign.py runs each target in-process under nice until it
# has used FUZZ_CPU_SECONDS of CPU (user + system of the fuzzer, not wall
# time), FUZZ_JOBS targets at a time, starting from the committed corpus
# (tests/**/corpus/<target>) and resuming from build/fuzz/corpus/<target>.
# The CPU used is kept in build/fuzz/campaign.json: running the same command
# again continues the targets that have not reached the budget. Per target it
# reports CPU seconds, executions, cov/ft, corpus files and findings
# (crash/leak/timeout/oom, saved as build/fuzz/artifacts/<target>-<kind>-*) in
# build/fuzz/campaign.json and build/fuzz/campaign.md. Ctrl-C stops cleanly and
# keeps what was measured. FUZZ_ARGS passes more options, e.g.
# FUZZ_ARGS='--stop-at 01:30' (UTC) or FUZZ_ARGS=--fresh (start from zero).
# FUZZ_TARGETS runs a subset: make fuzz-run FUZZ_TARGETS=base64_fuzz.
FUZZ_CPU_SECONDS ?= 600
FUZZ_JOBS ?= 1
FUZZ_NICE ?= 19
FUZZ_TARGETS ?= $(FUZZERS)
FUZZ_ARGS ?=
fuzz-run: fuzz
	python3 tools/fuzz/run_campaign.py --build build/fuzz --cpu-seconds $(FUZZ_CPU_SECONDS) \
	  --jobs $(FUZZ_JOBS) --nice $(FUZZ_NICE) $(FUZZ_ARGS) $(FUZZ_TARGETS)

# Codec micro-benchmark, then tkmsd over HTTP and HTTPS against its ceilings
# (raw PKCS#11 operation mix; HTTP and TLS echo) measured in the same run, and
# TLS handshakes per second (docs/benchmarks.md). About 1.5 minutes.
bench: release
	./build/release/tests/bench/mikey_codec_bench
	python3 tools/bench/kms_bench.py --build build/release

# Hostile clients against tkmsd's Ua listener: the valid rate during 1,000 idle,
# idle keep-alive, 200 slow-header and 200 slow-body connections from another
# loopback address, whether those are cut at their deadlines, and /healthz
# under the idle flood (docs/benchmarks.md, "Hostile clients"). About 70 s;
# the deadlines (10 s) outlast the valid client's 7 s window. Over HTTPS:
# HOSTILE_ARGS='--scheme https --request-timeout-ms 10000 --keep-alive-timeout-ms 10000'.
# HOSTILE_ARGS=--quick for a 20-second smoke run.
HOSTILE_ARGS ?= --request-timeout-ms 10000 --keep-alive-timeout-ms 10000
bench-hostile: release
	python3 tools/bench/hostile_bench.py --build build/release $(HOSTILE_ARGS)

# PKCS#11 fault campaign (docs/reliability.md, "PKCS#11 faults"): every
# PKCS#11 call site tkmsd reaches on its request, resolve, HTTPS and reload
# paths is failed once through the test-only fault module, with each of 5
# error classes; prints the table of sites x classes and fails on any 500,
# crash, hang, half-written token or secret in the log. About 1.5 minutes.
# FAULT_ARGS='--occurrences all' fails every call, not only each site's first
# and last of a workload (about 10 minutes).
FAULT_ARGS ?=
fault-campaign: deps
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS) --target tkmsd tkms-bench tkms_fault_pkcs11
	python3 tools/reliability/pkcs11_faults.py --build build/debug $(FAULT_ARGS)

# Soak (docs/reliability.md, "Soak"): half the saturating rate of a request +
# resolve mix for SOAK_SECONDS with reloads, ticket-key rotations and a token
# fault in the middle; fails on any unexplained error or an RSS / fd slope
# above its bound. Not in CI (ctest runs a 30-second variant).
SOAK_SECONDS ?= 600
SOAK_ARGS ?=
soak: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target tkmsd tkmsctl tkms-bench tkms_fault_pkcs11
	python3 tools/reliability/soak.py --build build/release --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

# `make run`: a development KMS on 127.0.0.1:8080 (Ua, plain HTTP), :8443 (Ua,
# HTTPS with a development CA whose certificate is $(RUN_DIR)/dev-ca.pem; the
# TLS key and the CA key are in the token) and :8081 (admin) with a fresh
# throw-away SoftHSM2 token and the demo users alice and bob, whose PSK copies
# are written to $(RUN_DIR)/ue/. Ctrl-C stops it.
RUN_DIR ?= build/run
TKMSD := ./build/debug/firmware/tkmsd/tkmsd
run: build
	@rm -rf $(RUN_DIR)
	@echo "== tkmsd --dev --state-dir $(RUN_DIR)  (Ctrl-C to stop)"
	@echo "   try it from another terminal:"
	@echo "     curl -s http://127.0.0.1:8081/readyz"
	@echo "     ./build/debug/tools/bench/tkms-bench --url http://127.0.0.1:8080 --mode request \\"
	@echo "       --initiator sip:alice@example.org --initiator-psk $(RUN_DIR)/ue/alice.psk \\"
	@echo "       --responder sip:bob@example.org --responder-psk $(RUN_DIR)/ue/bob.psk --duration 2"
	@echo "     curl -s http://127.0.0.1:8081/metrics | grep '^tkms_requests_total'"
	@echo "   HTTPS (the development CA is written to $(RUN_DIR)/dev-ca.pem at start):"
	@echo "     curl --cacert $(RUN_DIR)/dev-ca.pem -sS -X POST -H 'Content-Type: application/mikey' --data-binary AAAA \\"
	@echo "       'https://localhost:8443/keymanagement?requesttype=ticketrequest'   # 400 (not MIKEY): the TLS works"
	@echo "     ./build/debug/tools/bench/tkms-bench --url https://localhost:8443 --cacert $(RUN_DIR)/dev-ca.pem --mode request \\"
	@echo "       --initiator sip:alice@example.org --initiator-psk $(RUN_DIR)/ue/alice.psk \\"
	@echo "       --responder sip:bob@example.org --responder-psk $(RUN_DIR)/ue/bob.psk --duration 2"
	@echo "     SOFTHSM2_CONF=$(RUN_DIR)/softhsm2.conf pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --list-objects --login   # PIN: $(RUN_DIR)/token.pin"
	$(TKMSD) --dev --state-dir $(RUN_DIR)

# `make deb`: the Debian 12 packages of the appliance (CPack, packaging/):
# tkmsd (daemon, sandboxed systemd unit, /etc/tkms/local.json, the tkms user),
# tkmsctl, tkms-ue and tkms-tools (tkms-bench, tkms-echo), built from the
# release preset into build/deb/. Install: apt install ./build/deb/*.deb
# (docs/operations.md). The test packaging.deb checks them (lintian,
# systemd-analyze, maintainer scripts, tkmsd started from the installed files).
DEB_PROGRAMS := tkmsd tkmsctl tkms-ue tkms-bench tkms-echo tkms_package_files
deb: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target $(DEB_PROGRAMS)
	rm -rf build/deb
	cd build/release && cpack -G DEB -B ../deb
	rm -rf build/deb/_CPack_Packages
	@ls -1 build/deb/*.deb

clean:
	rm -rf build
