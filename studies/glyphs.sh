#!/usr/bin/env bash
# The small study `make study` runs on a CPU: 3 losses x 3 seeds on the generated glyphs set
# (no download), small network, a few epochs. It exercises the whole flow of the big studies
# (sweep -> run record -> tables -> figures) in minutes, not a benchmark result.
#
#   bash studies/glyphs.sh                  sequential
#   JOBS=2 bash studies/glyphs.sh           2 at a time
#   bash studies/glyphs.sh --list           the 9 lines
cd "$(dirname "$0")/.."
DATA=${DATA:-runs/data}
SAVE=${SAVE:-runs}
PROJECT=${PROJECT:-glyphs_study}
SEEDS=${SEEDS:-"0 1 2"}
source studies/run_lines.sh
COMMON="--dataset glyphs --dataset_glyphs_n_classes 120 --dataset_glyphs_per_class 10 \
--arch smallnet_normalize --not_pretrained --embed_dim 32 --bs 64 --samples_per_class 4 \
--lr 1e-3 --fc_lr 1e-3 --decay 1e-4 --n_epochs 8 --iters_per_epoch 10 --tau 6 --kernels 0 \
--use_tv_split --no_train_metrics \
--evaluation_metrics e_recall@1 e_recall@2 e_recall@4 nmi mAP_at_r \
dists@intra dists@inter dists@intra_over_inter rho_spectrum@2"

study_lines() {
cat <<LINES
$PYTHON main.py --group glyphs_Margin_Distance --seed 0 --loss margin --batch_mining distance $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_Margin_Distance --seed 1 --loss margin --batch_mining distance $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_Margin_Distance --seed 2 --loss margin --batch_mining distance $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_Triplet_Semihard --seed 0 --loss triplet --batch_mining semihard $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_Triplet_Semihard --seed 1 --loss triplet --batch_mining semihard $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_Triplet_Semihard --seed 2 --loss triplet --batch_mining semihard $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_MS --seed 0 --loss multisimilarity $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_MS --seed 1 --loss multisimilarity $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
$PYTHON main.py --group glyphs_MS --seed 2 --loss multisimilarity $COMMON --source_path "$DATA" --save_path "$SAVE" --project "$PROJECT" $ONLINE
LINES
}

study_main "$@"
