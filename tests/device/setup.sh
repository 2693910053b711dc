# Sourced at the start of every device call: carried wheels (nvtx, orjson), libdw for nsys, paths.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -1
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
if [ -d .carry/debs ]; then for f in .carry/debs/*.deb; do dpkg -x $f /tmp/dw; done; export LD_LIBRARY_PATH=/tmp/dw/usr/lib/x86_64-linux-gnu; fi
export TRACER_NSYS=/opt/nvidia/nsight-compute/2025.3.1/host/target-linux-x64/nsys
export TRACER_NCU=$(command -v ncu)
T="python3 -m tracer.cli"
mkdir -p traces/gpu
step() { echo "=== $*"; local t0=$(date +%s); "$@" 2>&1 | grep -vE "^(\(|INFO|DEBUG)" | tail -4; echo "--- rc=${PIPESTATUS[0]} $(( $(date +%s) - t0 ))s"; }
# Copy what is finished so far to $OUT after every step: a call cut off at its limit still returns it.
snapshot() { tar czf /tmp/snap.tgz traces/gpu 2>/dev/null && split -b 15m -d /tmp/snap.tgz $OUT/$1.tgz.; }
