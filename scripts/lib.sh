# scripts/lib.sh — helpers shared by productd's scripts; source it, do not
# run it. Expects ROOT (the repository) to be set; keeps logs in $DATA
# (default $ROOT/.data). die prefixes its message with $PROG (default the
# script's path from the repository root).

DATA=${DATA:-$ROOT/.data}
PROG=${PROG:-scripts/${0##*/}}

have() { command -v "$1" >/dev/null 2>&1; }

# Progress of slow steps (installs, builds) goes to stderr: "<name>  <what>".
note() { printf '%-9s %s\n' "$1" "$2" >&2; }

die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 1
}

# as_root CMD...: run CMD as root, directly when we are root, else through
# non-interactive sudo; fail with what needed root otherwise.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@"
	elif have sudo && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		die "need root for: $* (run as root or set up passwordless sudo)"
	fi
}

# apt_install PACKAGE...: install Debian packages as root, logging to
# $DATA/apt.log.
apt_install() {
	mkdir -p "$DATA"
	local log=$DATA/apt.log
	have apt-get || die "$* not installed and there is no apt-get; install it by hand"
	note "$1" "installing Debian package(s) $* (log: .data/apt.log)"
	# Package lists on a fresh machine may be stale or missing: update only
	# when the first attempt fails, so the common case stays quick. Another
	# install in progress (a parallel make) holds dpkg's lock: wait for it.
	local wait=(-o DPkg::Lock::Timeout=300)
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y "$@" >>"$log" 2>&1; then
		as_root apt-get "${wait[@]}" update >>"$log" 2>&1 || true
		as_root env DEBIAN_FRONTEND=noninteractive apt-get "${wait[@]}" install -y "$@" >>"$log" 2>&1 ||
			die "apt-get install $* failed; see $log"
	fi
}
