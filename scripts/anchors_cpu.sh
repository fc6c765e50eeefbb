#!/usr/bin/env bash
# The runs behind the study's two anchors (issue 19; whatwhere.md 5.3, 9.7): What/Where with the SLIP
# 20171205 bank at the three contrasts and three seeds, and the STN study's reference schedules
# (POLO-ATN, ATN, our peripheral ATN) run to their end. Each finished run is shipped into zoo/ (its
# weights and its manifest entry), so `make reproduce` rebuilds the benchmark from it.
#
#   bash scripts/anchors_cpu.sh ww          # What/Where: seed 1's contrasts, the reference-map net,
#                                           #   seeds 2-3; then the STN runs the other queue has not taken
#   bash scripts/anchors_cpu.sh stn         # ATN, then POLO-ATN seeds, the peripheral ATN on 110 epochs
#   bash scripts/anchors_cpu.sh park        # before a session ends: runs in progress -> zoo/runs/
#
# One queue per core (OMP_NUM_THREADS=1 each). A run already in the manifest is skipped, and so is one
# another queue is running (a lock, $RUNS/<name>.lock, held by the queue and its training): the two
# queues share the STN runs, so neither core idles while the other runs the 14 h ATN. A run in
# progress resumes from its last.ckpt, also on a new machine: `park` keeps each unshipped run's
# last.ckpt, TensorBoard events, config and evaluations under zoo/runs/<name> (commit them), and the
# queues bring them back into $RUNS before they go on; neither replaces a copy further on (more steps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUNS=${RUNS:-outputs/anchors}
WW_SEEDS=${WW_SEEDS:-1 2 3}
POLO_SEEDS=${POLO_SEEDS:-1 2 3}
CONTRASTS=${CONTRASTS:-0.7 0.5 0.3}
MACHINE=${MACHINE:-"the project's CPU machine: 2 cores, 24 GiB, no GPU"}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
command -v flock > /dev/null || { echo "anchors_cpu.sh needs flock (util-linux)" >&2; exit 1; }

shipped() { grep -q "^- name: $1\$" zoo/manifest.yaml 2>/dev/null; }

steps() {  # steps CKPT: the training steps a checkpoint has done (-1 when there is none)
  [[ -f $1 ]] || { echo -1; return; }
  "$PY" -c 'import sys, torch; print(torch.load(sys.argv[1], map_location="cpu", weights_only=False)["global_step"])' "$1"
}

progress() {  # progress CKPT: its epochs and its best val/acc, so that a run stuck at chance shows when parked
  "$PY" -c '
import sys, torch
c = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
states = [s for s in c["callbacks"].values() if isinstance(s, dict) and s.get("monitor") == "val/acc"]
line = "%d epochs" % (c["epoch"] + 1)
if states and states[0].get("best_model_score") is not None:
    line += ", best val/acc %.3f (chance .1)" % float(states[0]["best_model_score"])
print(line)' "$1"
}

restore() {  # restore NAME: a run parked by an earlier session, back into $RUNS, unless the run here is as far
  local parked=zoo/runs/$1 here=$RUNS/$1
  [[ -d $parked ]] || return 0
  [[ -f $here/eval/metrics.json ]] && return 0  # trained and evaluated here: only the shipping is left
  if (($(steps "$parked/checkpoints/last.ckpt") > $(steps "$here/checkpoints/last.ckpt"))); then
    rm -rf "$here" && mkdir -p "$RUNS" && cp -rT "$parked" "$here" && echo "restored: $here"
  fi
}

run() {  # run NAME SHIP_ARGS... -- TRAIN_ARGS...: train (or resume), then ship into the zoo
  local name=$1; shift
  local ship=()
  while [[ $1 != -- ]]; do ship+=("$1"); shift; done
  shift
  if shipped "$name"; then echo "shipped: $name"; return; fi
  mkdir -p "$RUNS"
  local lock
  # held until the run is shipped (or this queue and the training it started have both ended)
  exec {lock}>"$RUNS/$name.lock"
  if ! flock -n "$lock"; then echo "taken by another queue: $name"; exec {lock}>&-; return; fi
  # shipped by the other queue between the check above and the lock
  if shipped "$name"; then echo "shipped: $name"; exec {lock}>&-; return; fi
  restore "$name"
  local dir=$RUNS/$name
  if [[ ! -f $dir/eval/metrics.json ]]; then
    echo "train: $name $*"
    "$PY" -m stn_fovea.train "$@" hydra.run.dir="$dir"
  fi
  if [[ $* == *what_where* && ! -f $dir/eval_as_trained/metrics.json ]]; then  # saccades 2.. as trained
    "$PY" -m stn_fovea.evaluate ckpt_path="$dir/checkpoints/last.ckpt" +model.net.reencode_as_trained=true \
      hydra.run.dir="$dir/eval_as_trained"
  fi
  # weights shipped as trained (not --half): the run's own evaluation of them stands, no second one
  # (the ATN's grid reads 10,000 digits per cell: about 20 min)
  [[ " ${ship[*]} " != *" --half "* ]] && ship+=(--measured-by "$dir/eval/metrics.json")
  "$PY" -m stn_fovea.zoo add "$name" "$dir/checkpoints/last.ckpt" "${ship[@]}" --machine "$MACHINE" \
    --threads "$OMP_NUM_THREADS" --command "python -m stn_fovea.train $*"
  rm -rf "zoo/runs/$name"
  exec {lock}>&-
}

stn_runs() {  # POLO-ATN seeds and our peripheral ATN, on the reference schedule
  for seed in $POLO_SEEDS; do
    run "polo_atn_reference_s$seed" -- experiment=polo_atn_reference seed="$seed"
  done
  # the ATN's schedule, the same for every parameter: its localisation at the schedule's LR too (the
  # model's default tenth is for Adam, which atn_reference does not use), its translation bounded (an
  # unbounded one left the image at epoch 3 of the first run, which then trained at chance to its end)
  run peripheral_atn_reference_s1 -- experiment=atn_reference model=peripheral_atn \
    model.localization_lr_scale=1.0 model.net.transformer.pose.max_shift=0.75 seed=1
}

usage() { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; }

WHAT=(model.what_ckpt=zoo/what28_robust.ckpt model.accuracy_map=zoo/what28_robust_shift_map.npy)
main() {  # a function, read whole before it runs: the script may be edited while a queue runs
  case ${1:-} in
    ww)
      for seed in $WW_SEEDS; do
        for contrast in $CONTRASTS; do
          run "what_where_c${contrast/./}_s$seed" --half -- model=what_where data.contrast="$contrast" \
            seed="$seed" "${WHAT[@]}"
        done
        # after seed 1, targets from the reference's published What map: the Where pathway apart from
        # our What (it says whether our What explains the gap to the paper, before more seeds repeat it)
        if [[ $seed == "${WW_SEEDS%% *}" ]]; then
          run what_where_c05_s1_reference_map --half -- experiment=what_where_reference_map \
            data.contrast=0.5 seed=1
        fi
      done
      stn_runs
      ;;
    stn)
      # ATN first: at about 14 h on one thread it is the longest run, resumed across sessions
      run atn_reference_s1 -- experiment=atn_reference seed=1
      stn_runs
      ;;
    park)  # every run not yet shipped, also one trained and evaluated whose shipping had not ended
      for dir in "$RUNS"/*/; do
        name=$(basename "$dir")
        [[ -f $dir/checkpoints/last.ckpt ]] || continue
        shipped "$name" && continue
        if (($(steps "$dir/checkpoints/last.ckpt") < $(steps "zoo/runs/$name/checkpoints/last.ckpt"))); then
          echo "kept: zoo/runs/$name, further on than $dir"
          continue
        fi
        local partial=zoo/runs/.$name.partial  # the earlier park stays until this one is whole
        rm -rf "$partial" && mkdir -p "$partial/checkpoints"
        cp "$dir/checkpoints/last.ckpt" "$partial/checkpoints/"
        for kept in tensorboard config_resolved.yaml eval eval_as_trained; do
          if [[ -e $dir/$kept ]]; then cp -r "$dir/$kept" "$partial/"; fi
        done
        rm -rf "zoo/runs/$name" && mv "$partial" "zoo/runs/$name"
        echo "parked: zoo/runs/$name ($(du -sh "zoo/runs/$name" | cut -f1); $(progress "zoo/runs/$name/checkpoints/last.ckpt")); commit it"
      done
      ;;
    *)
      usage
      exit 2
      ;;
  esac
}

main "$@"; exit
