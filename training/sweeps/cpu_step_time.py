"""Seconds per training step on this CPU (2 threads) for the sweep's recipes: 12 steps each, from
the real cache, through train() with stain-variant-free sampling. Run from the repo root, CACHE being
the training cache that `training/reproduce.sh` builds:
    PYTHONPATH=training training/.venv/bin/python training/sweeps/cpu_step_time.py CACHE
"""
import json, sys, time

import numpy as np, torch
torch.set_num_threads(2)
from blastwatch_train.cache import load_cache
from blastwatch_train.sweep import make_config
from blastwatch_train.train import train
from blastwatch_train.split import split_indices
c=load_cache(sys.argv[1]); ix=split_indices(json.load(open('training/split.json')),c)
for spec in [dict(width=0.5),dict(width=0.75),dict(width=1.0),dict(backbone="efficientnet_b0",width=1.0),
             dict(backbone="mobilenet_v3_large",width=1.0),dict(variant="late",width=0.5),
             dict(width=0.5,compute_size=224),dict(width=0.35,compute_size=224),dict(width=0.5,batch_size=64,lr=0.004)]:
    cfg=make_config({"name":"t",**spec,"epochs":1}); cfg.max_steps=12
    t=time.time(); net,info=train(cfg,c,ix['train'],ix['val'][:64]); dt=time.time()-t
    print(json.dumps({**spec,"s_per_step":round(dt/12,3),"s_per_epoch_est":round(dt/12*len(ix['train'])//cfg.batch_size,1)}),flush=True)
