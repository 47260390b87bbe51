#!/usr/bin/env bash
# The GPU checks, run by hand on a CUDA machine: the trainers, validation and the benchmarks on the GPU,
# one summary line per check ("CHECK <name>: PASS|FAIL <figures>") and the full logs under $OUT_DIR.
#
#     bash benchmarks/gpu_check.sh                 # FACENET_SHARED (default ../shared) holds the data
#     OUT_DIR=/tmp/gpu_check bash benchmarks/gpu_check.sh
#     CHECKS="align validate" bash benchmarks/gpu_check.sh    # only these (align always runs: the others need it)
#
# Needs: the project installed (`pip install -e .` with a CUDA build of TensorFlow, e.g.
# `pip install 'tensorflow[and-cuda]'`), $FACENET_SHARED with lfw/ and models/20170512-110547/.
# Checks, in order (each bounded by CHECK_TIMEOUT seconds, default 900; a failure does not stop the rest):
#   gpu            TensorFlow sees a GPU and runs a matrix product on it
#   align          align_dataset_mtcnn.py on 400 LFW images on the GPU: images/s, faces found
#   train_softmax  3 epochs x 5 steps of train_softmax.py, Inception-ResNet-v1 from 20170512-110547, in float32,
#                  bfloat16 and float16 (loss scaling): finite losses, a checkpoint, images/s
#   train_triplet  2 epochs x 3 batches of train_tripletloss.py (vggface selection), float16
#   bench_train    benchmarks/bench_train.py: float32 / bfloat16 / float16 train steps against inference
#   validate       validate_on_lfw.py on pairs of the aligned faces (generate_pairs.py; float32 and bfloat16)
#   embeddings     benchmarks/bench_embeddings.py: the frozen graph against the port in float32 and bfloat16
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHARED=${FACENET_SHARED:-"$(cd .. && pwd)/shared"}
OUT_DIR=${OUT_DIR:-"$(mktemp -d)/gpu_check"}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-900}
PYTHON=${PYTHON:-python}
MODEL="$SHARED/models/20170512-110547/20170512-110547.pb"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
mkdir -p "$OUT_DIR"
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
echo "logs in $OUT_DIR"

wants() {  # wants NAME: whether CHECKS (default all) asks for that check
    [[ " ${CHECKS:-all} " == *" all "* || " ${CHECKS:-} " == *" $1 "* ]]
}

report() {  # report NAME STATUS FIGURES
    echo "CHECK $1: $2 $3" | tee -a "$SUMMARY"
}

run_check() {  # run_check NAME COMMAND...: its output to $OUT_DIR/NAME.log, the exit status returned
    local name=$1
    shift
    timeout "$CHECK_TIMEOUT" "$@" > "$OUT_DIR/$name.log" 2>&1
}

# -- gpu ---------------------------------------------------------------------------------------------------------
if ! wants gpu; then :
elif run_check gpu "$PYTHON" - <<'PY'
import tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
assert gpus, 'TensorFlow sees no GPU'
with tf.device('/GPU:0'):
    x = tf.random.normal([4096, 4096])
    y = tf.matmul(x, x)
print('devices', [g.name for g in gpus], 'product on', y.device, 'sum', float(tf.reduce_sum(y)))
details = tf.config.experimental.get_device_details(gpus[0])
print('name', details.get('device_name'), 'compute capability', details.get('compute_capability'))
PY
then report gpu PASS "$(grep '^name' "$OUT_DIR/gpu.log")"
else report gpu FAIL "$(tail -1 "$OUT_DIR/gpu.log")"; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$SUMMARY" 2>/dev/null

# -- align: 400 images of the people with the most images, 20 identities or more ---------------------------------
RAW="$OUT_DIR/raw"
ALIGNED="$OUT_DIR/aligned_160"
mkdir -p "$RAW"
"$PYTHON" - "$SHARED/lfw/lfw-deepfunneled" "$RAW" <<'PY'
import os, sys
source, target = sys.argv[1:3]
people = sorted(os.listdir(source), key=lambda p: (-len(os.listdir(os.path.join(source, p))), p))
count = 0
for person in people:
    if count >= 400:
        break
    os.symlink(os.path.join(source, person), os.path.join(target, person))
    count += len(os.listdir(os.path.join(source, person)))
PY
start=$SECONDS
if run_check align "$PYTHON" src/align/align_dataset_mtcnn.py "$RAW" "$ALIGNED" --image_size 160 --margin 32; then
    seconds=$((SECONDS - start))
    images=$(find -L "$RAW" -name '*.jpg' | wc -l)
    faces=$(find "$ALIGNED" -name '*.png' | wc -l)
    report align PASS "$faces faces of $images images in ${seconds}s ($((images / (seconds > 0 ? seconds : 1))) img/s, with start-up)"
else report align FAIL "$(tail -1 "$OUT_DIR/align.log")"; fi

# -- the trainers --------------------------------------------------------------------------------------------------
for precision in float32 bfloat16 float16; do
    name="train_softmax_$precision"
    if ! wants train_softmax; then :
    elif run_check "$name" "$PYTHON" src/train_softmax.py --data_dir "$ALIGNED" --models_base_dir "$OUT_DIR/models" \
        --logs_base_dir "$OUT_DIR/logs" --model_def models.inception_resnet_v1 --pretrained_model "$MODEL" \
        --batch_size 32 --epoch_size 5 --max_nrof_epochs 3 --optimizer ADAGRAD --learning_rate 0.01 \
        --center_loss_factor 0.01 --prelogits_norm_loss_factor 5e-4 --precision "$precision" --no_resume; then
        losses=$(grep -c '^Epoch: \[' "$OUT_DIR/$name.log")
        last=$(grep '^Epoch: \[' "$OUT_DIR/$name.log" | tail -1 | sed 's/.*Loss \([0-9.naif-]*\).*/\1/')
        step=$(grep '^Epoch: \[3\]' "$OUT_DIR/$name.log" | sed 's/.*Time \([0-9.]*\).*/\1/' | sort -n | \
            awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        report "$name" PASS "$losses steps, last loss $last, median step ${step}s in epoch 3 (batch 32)"
    else report "$name" FAIL "$(tail -1 "$OUT_DIR/$name.log")"; fi
done
if ! wants train_triplet; then :
elif run_check train_triplet "$PYTHON" src/train_tripletloss.py --data_dir "$ALIGNED" --models_base_dir "$OUT_DIR/models" \
    --logs_base_dir "$OUT_DIR/logs" --model_def models.inception_resnet_v1 --pretrained_model "$MODEL" \
    --people_per_batch 15 --images_per_person 4 --batch_size 30 --epoch_size 3 --max_nrof_epochs 2 \
    --optimizer ADAGRAD --learning_rate 0.002 --precision float16 --no_resume; then
    report train_triplet PASS "$(grep -c '^Epoch: \[' "$OUT_DIR/train_triplet.log") steps, last: $(grep '^Epoch: \[' \
        "$OUT_DIR/train_triplet.log" | tail -1 | cut -c1-100)"
else report train_triplet FAIL "$(tail -1 "$OUT_DIR/train_triplet.log")"; fi

# -- the training benchmark -----------------------------------------------------------------------------------------
if ! wants bench_train; then :
elif run_check bench_train "$PYTHON" benchmarks/bench_train.py --data_dir "$ALIGNED" --pretrained_model "$MODEL" \
    --batch_size 64 --rounds 5 --steps_per_round 5 --precisions float32 bfloat16 float16 --before --loss_curve 50; then
    report bench_train PASS "$(grep -E '^(inference|train|float32 before|bfloat16 before|float16 before)' "$OUT_DIR/bench_train.log" | \
        awk '{printf "%s %s %s img/s; ", $1, $2, $3}')"
else report bench_train FAIL "$(tail -1 "$OUT_DIR/bench_train.log")"; fi

# -- validation on the aligned LFW pairs ------------------------------------------------------------------------------
PAIRS="$OUT_DIR/pairs_aligned.txt"
# Pairs of the aligned people (LFW's own pairs rarely pair two of them): 2 folds of 50 + 50 pairs.
"$PYTHON" src/generate_pairs.py "$ALIGNED" "$PAIRS" --nrof_folds 2 --nrof_pairs 50 --seed 666 \
    > "$OUT_DIR/pairs.log" 2>&1
for precision in float32 bfloat16; do
    name="validate_$precision"
    if ! wants validate; then :
    elif run_check "$name" "$PYTHON" src/validate_on_lfw.py "$ALIGNED" "$MODEL" --lfw_pairs "$PAIRS" --lfw_nrof_folds 2 \
        --distance_metric 0 --precision "$precision"; then
        report "$name" PASS "$(grep -E '^Accuracy' "$OUT_DIR/$name.log")"
    else report "$name" FAIL "$(tail -1 "$OUT_DIR/$name.log")"; fi
done

# -- embeddings -----------------------------------------------------------------------------------------------------
if ! wants embeddings; then :
elif run_check embeddings "$PYTHON" benchmarks/bench_embeddings.py "$MODEL" --lfw_images "$SHARED/lfw/lfw-deepfunneled" \
    --batch_sizes 1 32 128 --repeats 5 --contenders original float32 bfloat16; then
    report embeddings PASS "$(grep -E '^ +[0-9]+ [a-z]' "$OUT_DIR/embeddings.log" | awk '{printf "batch %s %s %s img/s (%sx); ", $1, $2, $3, $4}')"
else report embeddings FAIL "$(tail -1 "$OUT_DIR/embeddings.log")"; fi

echo "== summary ($SUMMARY)"
cat "$SUMMARY"
! grep -q ': FAIL' "$SUMMARY"
