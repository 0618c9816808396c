# Two commands on a fresh machine: `make demo` (train on the built-in glyphs set) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell md5sum requirements.txt | cut -c1-8)
DEMO_DIR ?= runs

.PHONY: install demo demo-clean test lint fmt bench clean study study-clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

# A small network on the generated glyphs dataset, CPU only, a few minutes. Re-running it reports
# the finished run; `make demo-clean` forgets it.
demo: $(STAMP)
	$(BIN)/python main.py --dataset glyphs --source_path $(DEMO_DIR)/data \
	  --save_path $(DEMO_DIR) --project demo --group glyphs_margin_distance --seed 0 \
	  --arch smallnet_normalize --not_pretrained --embed_dim 64 \
	  --loss margin --batch_mining distance --data_sampler class_random \
	  --bs 112 --samples_per_class 4 --lr 1e-3 --fc_lr 1e-3 --decay 1e-4 --n_epochs 25 --tau 15 22 \
	  --kernels 0 --no_train_metrics --use_tv_split \
	  --evaluation_metrics e_recall@1 e_recall@2 e_recall@4 nmi mAP_at_r

demo-clean:
	rm -rf $(DEMO_DIR)/demo

# The study flow on a CPU: 3 losses x 3 seeds on glyphs, 2 runs at a time (studies/glyphs.sh),
# then tables and figures (Result_Evaluations.py) in $(DEMO_DIR)/glyphs_study_results. Re-running
# skips finished runs; `make study-clean` forgets them.
study: $(STAMP)
	OMP_NUM_THREADS=1 JOBS=2 PYTHON=$(BIN)/python DATA=$(DEMO_DIR)/data SAVE=$(DEMO_DIR) \
	  LOG_DIR=$(DEMO_DIR)/glyphs_study_logs bash studies/glyphs.sh
	$(BIN)/python Result_Evaluations.py $(DEMO_DIR)/glyphs_study --out $(DEMO_DIR)/glyphs_study_results

study-clean:
	rm -rf $(DEMO_DIR)/glyphs_study $(DEMO_DIR)/glyphs_study_logs $(DEMO_DIR)/glyphs_study_results

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# ruff (configured in pyproject.toml): lint rules and formatting; `make fmt` applies the formatting
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Prints figures (never asserted in tests); the evaluation benchmark alone takes a few minutes.
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR)
