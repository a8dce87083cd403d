# Shared by tools/synth/synth.sh and tools/synth/timing.sh (sourced, not run).
# A block is named by its file list, rtl/<half>/<block>.f (the same list the benches and lint
# read): "aes256", "symmetric/aes256" or "rtl/symmetric/aes256.f" all name the same block.

# synth_root: the repository root.
synth_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# synth_list <block>: prints the path of the block's file list, or fails naming the block.
synth_list() {
  local b=$1 f
  case $b in
    *.f) f=$b; [ -f "$f" ] || f=$synth_root/$b ;;
    */*) f=$synth_root/rtl/$b.f ;;
    *) f=$(ls "$synth_root"/rtl/*/"$b".f 2>/dev/null | head -n 1) ;;
  esac
  if [ -z "$f" ] || [ ! -f "$f" ]; then
    echo "synth: no file list for block '$b' (expected rtl/<half>/$b.f)" >&2
    return 1
  fi
  echo "$f"
}

# synth_sources <list>: the list's sources (absolute paths), one per line; fails on a missing one.
synth_sources() {
  local list=$1 line
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    line=$(echo "$line" | tr -d '[:space:]')
    [ -z "$line" ] && continue
    if [ ! -f "$synth_root/rtl/$line" ]; then
      echo "synth: $list names $line, which does not exist under rtl/" >&2
      return 1
    fi
    echo "$synth_root/rtl/$line"
  done < "$list"
}

# synth_script <top> <list> <json-out or ""> [NAME=VALUE...]: prints the Yosys script: read the
# list, set the parameters, synth_xilinx for UltraScale+ flattened, stat, optionally write_json.
synth_script() {
  local top=$1 list=$2 json=$3 srcs p
  shift 3
  srcs=$(synth_sources "$list" | tr '\n' ' ') || return 1
  echo "read_verilog -sv $srcs"
  for p in "$@"; do
    case $p in
      *=*) echo "chparam -set ${p%%=*} ${p#*=} $top" ;;
      *) echo "synth: parameter setting '$p' is not NAME=VALUE" >&2; return 1 ;;
    esac
  done
  echo "synth_xilinx -family xcup -top $top -flatten -noiopad"
  echo "stat"
  if [ -n "$json" ]; then
    echo "write_json $json"
  fi
}
