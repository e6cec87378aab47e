# Sourced by the scripts that run pip. `pip_quiet PYTHON ARGS...` runs `PYTHON -m pip -q ARGS...`
# and prints its output without the noise of pip configs that list local wheel folders which do
# not exist on this machine; returns pip's exit status.
pip_quiet() {
    local python=$1 log status=0
    shift
    log=$(mktemp)
    "$python" -m pip --disable-pip-version-check -q "$@" >"$log" 2>&1 || status=$?
    grep -v "is ignored: it is neither a file nor a directory" "$log" || true
    rm -f "$log"
    return $status
}
