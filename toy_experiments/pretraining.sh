#!/usr/bin/env bash
# ImageNet-pretrained EfficientNet-Lite0 (frozen BN) vs the same net from random weights vs smallnet,
# on unseen classes of Fashion-MNIST and glyphs, with a small CPU budget. Prints each run's table
# (R@1 and MAP@R on the test classes before training, at the selected and at the last epoch).
# Both EfficientNets train with the same learning rates; the pretrained one keeps its BN frozen.
#   bash toy_experiments/pretraining.sh [SAVE_PATH] [SEED]
set -euo pipefail
# one thread per process: on a shared CPU, OpenMP threads that spin-wait slow each other down
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
SAVE=${1:-Training_Results}; SEED=${2:-0}
PY=${PYTHON:-python}
COMMON=(--loss margin --batch_mining distance --bs 40 --samples_per_class 8 --n_epochs 1
        --iters_per_epoch 25 --kernels 0 --no_train_metrics --seed "$SEED"
        --evaluation_metrics e_recall@1 mAP_at_r --save_path "$SAVE" --project pretraining)
DATA_fashion=(--dataset fashion_mnist --dataset_fashion_mnist_per_class 300)
DATA_glyphs=(--dataset glyphs --dataset_glyphs_n_classes 200)
for data in fashion glyphs; do
  declare -n D="DATA_$data"
  $PY main.py "${D[@]}" "${COMMON[@]}" --group "${data}_lite0_pretrained" \
      --arch efficientnet_lite0_frozen_normalize --image_size 64 --lr 1e-4 --fc_lr 1e-3
  $PY main.py "${D[@]}" "${COMMON[@]}" --group "${data}_lite0_random" \
      --arch efficientnet_lite0_normalize --not_pretrained --image_size 64 --lr 1e-4 --fc_lr 1e-3
  $PY main.py "${D[@]}" "${COMMON[@]}" --group "${data}_smallnet" \
      --arch smallnet_normalize --not_pretrained --lr 1e-3
done
