# Shell helpers shared by scripts/demo and bench/run (sourced, not run).

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "${0##*/}: no free port found" >&2; exit 1
}

# Waits up to 10 s until something listens on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "${0##*/}: nothing listens on port $1" >&2; return 1
}

# Creates the signer account $1 if it is missing, as docs/operator-guide.md §2 does: a system
# account with /bin/sh and no home (so no rc files). Password field "*": no password, but not
# locked ("!"), which sshd refuses with UsePAM no.
signer_account() {
  id "$1" >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh --password '*' "$1"
}
