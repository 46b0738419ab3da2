"""Writes set3/rows.csv (published phrasings kept), set3/rows-normalized.csv (the same rows, with only the phrasings
the importer refuses or misreads replaced by accepted synonyms; see NOTES.md, "Normalized phrasings") and
set3/probes.csv (one published phrasing at a time in an otherwise readable row; probes-why.txt says which).

Every value is typed by hand from the pinned source; `check()` re-finds each GitHub-sourced value (as the source
prints it) in its pinned file, via the local mirrors made by the `fetch` tool (/work/.mirror/OWNER+NAME/repo). The
arXiv values (FlashAttention-2 paper) were read from stored transcriptions and are not re-checked here.
"""
import csv, os, subprocess, sys

H = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source".split(",")
HERE = os.path.dirname(os.path.abspath(__file__))
rows, norm, checks = [], [], []
NS = "not stated in source"


def R(row, chk=(), **changes):
    """row: the 15 published fields; chk: (repo dir, commit, path, text as the source prints it) to re-find (a tuple
    of texts: all on one line of the file);
    changes: field -> normalized value (rows-normalized.csv only)."""
    assert len(row) == 15, (row[0], len(row))
    for k in changes:
        assert k in H, k
    rows.append([str(x) for x in row])
    n = dict(zip(H, [str(x) for x in row]))
    n.update({k: str(v) for k, v in changes.items()})
    norm.append([n[h] for h in H])
    for c in chk:
        checks.append((row[0],) + tuple(c))


# ---------------------------------------------------------------- 1. flash-attention training README (Dao-AILab)
FA = "/work/.mirror/Dao-AILab+flash-attention/repo"
FA_C = "4a6eaa9f27df6fff7ffb2c24e894938a687dd870"   # 2022-11-29 "Update configs, add results": adds the table
fa = f"https://github.com/Dao-AILab/flash-attention/blob/{FA_C}/training/"
FA_R = (FA, FA_C, "training/README.md")
# (name, experiment yaml, layers, hidden, heads, micro-batch at 80 GB, global batch, batch tokens, tok/s as printed,
#  value, strategy); micro-batch: the yaml's gpu_mem expression at 80 GB (nvidia-smi 81920 MiB -> 82)
FA_ROWS = [
    ("125M", "gpt3s-flash", 12, 768, 12, 32, 256, "0.5M", "1310k", 1310000, "DDP"),
    ("355M", "gpt3m-flash", 24, 1024, 16, 32, 256, "0.5M", "503k", 503000, "DDP"),
    ("1.3B", "gpt3xl-flash", 24, 2048, 16, 8, 512, "1M", "169k", 169000, "ZeRO1"),
    ("2.7B", "gpt3-2.7B-flash-hdim128", 32, 2560, 20, 4, 512, "1M", "85k", 85000, "ZeRO1"),
]
for name, yml, l, h, a, mb, gbs, btok, printed, val, strat in FA_ROWS:
    acc = gbs // (8 * mb)
    detail = (f"{l} layers; hidden {h}; {a} heads; seq 2048; vocab 50264 (GPT-2 50257 padded to a multiple of 8, "
              f"pad_vocab_size_multiple 8); micro-batch {mb}/GPU x {acc} accumulation (experiment/pile/{yml}.yaml: the "
              f"batch_size expression at gpu_mem 80 GB; base.yaml accumulate_grad_batches); batch size {btok} tokens "
              f"(table); use_flash_attn, fused_mlp/fused_dense_gelu_dense, fused_bias_fc, fused_dropout_add_ln, "
              f"residual_in_fp32; no activation checkpointing (README: 'we don't need any activation checkpointing'); "
              f"The Pile")
    par = "trainer.devices=8 (DDP)" if strat == "DDP" else "trainer.devices=8; DDPStrategyZero1 (ZeroRedundancyOptimizer)"
    R((f"fa-gpt3-{name.lower()}-8g", "1 node, 8 x A100 80GB SXM4 80GB (400W) with NVLink", "A100 80GB SXM4 80GB (400W)",
       8, 1, "NVLink (one node)", f"GPT3-{name}", detail, "bf16 (base.yaml trainer.precision)", gbs, par,
       "training throughput (Through put (tokens/sec) column, 8 GPUs together)", val, "tokens/sec",
       fa + "README.md#training-speed ; config " + fa + f"configs/experiment/pile/{yml}.yaml"),
      [FA_R + (f"| {printed}",), FA_R + ("A100 80GB SXM4 80GB (400W)",)],
      model=f"GPT-3 {name}", unit="tokens/s",
      parallelism="DP=8" if strat == "DDP" else "DP=8; ZeRO-1",
      model_detail=detail + "; no activation recompute")

# ---------------------------------------------------------------- 2. FlashAttention-2 paper, Table 1
FA2 = ("https://arxiv.org/abs/2307.08691v1 §4.2 End-to-end Performance, Table 1 (Dao 2023, FlashAttention-2); read via "
       "stored transcriptions of the v1 PDF; batch sizes not in the paper: " + fa.replace(FA_C, "d1a3b52f17b914c93bf740654387b566a7330687")
       + "configs/experiment/pile/ (2023-07-17)")
# (name, seq, column, value as printed)
for name, ctx, seq, col, val, gbs in [("1.3B", "2k", 2048, "FlashAttention-2", 196, 512), ("1.3B", "8k", 8192, "FlashAttention-2", 220, 128),
                                      ("2.7B", "2k", 2048, "FlashAttention-2", 205, 512), ("2.7B", "8k", 8192, "FlashAttention-2", 225, 128),
                                      ("2.7B", "8k", 8192, "Without FlashAttention", 80, 128)]:
    fa2 = col == "FlashAttention-2"
    detail = (f"GPT3-{name} {ctx} context; seq {seq}; {col} column"
              + ("" if fa2 else " (the baseline running without FlashAttention)")
              + f"; global batch {gbs} sequences (ASSUMPTION: the flash-attention repo's gpt3*-flash"
              + ("-8k" if seq == 8192 else "") + ".yaml of 2023-07; the paper gives no batch); model shapes: GPT-3 Table 2.1 by name")
    R((f"fa2-{'' if fa2 else 'noflash-'}gpt3-{name.lower()}-{ctx}", "8xA100 80GB SXM (one node)", "A100 80GB SXM", 8, 1, NS,
       f"GPT3-{name}", detail, NS, gbs, NS,
       "training speed (TFLOPs/s/GPU, Table 1; 72% model FLOPs utilization in the caption; FLOPs = 6·seqlen·params + 12·layers·hidden·seqlen²)",
       val, "TFLOPs/s", FA2),
      model=f"GPT-3 {name}", unit="TFLOP/s/GPU", parallelism="DP=8",
      model_detail=detail + ("" if fa2 else "; no flash attention"))

# ---------------------------------------------------------------- 3. Lambda deeplearning-benchmark (PyTorch, NGC 22.09)
LB = "/work/.mirror/lambdal+deeplearning-benchmark/repo"
LB_C = "4e11f6891ada05d1b317309d9b72c6072aa166d1"   # 2024-07-24, last change to the published CSVs
lb = f"https://github.com/lambdal/deeplearning-benchmark/blob/{LB_C}/pytorch/"
# (id, name_gpu, gpu, gpus, task, precision column, per-GPU batch, CSV value, results dir, log file, log value)
LAMBDA = [
    ("lambda-rn50-fp16-a100-1g", "A100 80GB SXM4", "A100 80GB SXM4", 1, "resnet50", "fp16", 1280, 1582, "A100_80GB_SXM4_v1", "PyTorch_resnet50_AMP/19-11-2022_18-30-46.txt", "1582.44"),
    ("lambda-rn50-fp16-a100-8g", "8x A100 80GB SXM4", "A100 80GB SXM4", 8, "resnet50", "fp16", 1280, 11439, "8xA100_80GB_SXM4_v1", "PyTorch_resnet50_AMP/19-11-2022_21-59-30.txt", "11439.64"),
    ("lambda-rn50-fp16-h100-1g", "H100 80GB SXM5", "H100 80GB SXM5", 1, "resnet50", "fp16", 1280, 2616, "H100_80GB_SXM5_v1", "PyTorch_resnet50_AMP/14-02-2023_05-07-45.txt", "2616.25"),
    ("lambda-rn50-fp16-h100-8g", "8x H100 80GB SXM5", "H100 80GB SXM5", 8, "resnet50", "fp16", 1280, 20728, "8xH100_80GB_SXM5_v1", "PyTorch_resnet50_AMP/14-02-2023_07-12-55.txt", "20728.88"),
    ("lambda-rn50-fp16-v100-1g", "LambdaCloud V100 16GB", "LambdaCloud V100 16GB", 1, "resnet50", "fp16", 256, 833, "LambdaCloud_V100_16GB_v1", "PyTorch_resnet50_AMP/16-12-2022_02-36-00.txt", "833.42"),
    ("lambda-rn50-fp32-a100-1g", "A100 80GB SXM4", "A100 80GB SXM4", 1, "resnet50", "fp32", 640, 1066, "A100_80GB_SXM4_v1", "PyTorch_resnet50_FP32/19-11-2022_19-10-36.txt", "1066.99"),
    ("lambda-rn50-fp16-h100pcie-1g", "H100 80GB PCIe Gen5", "H100 80GB PCIe Gen5", 1, "resnet50", "fp16", 1280, 1866, "H100_80GB_PCIe5_v1", "PyTorch_resnet50_AMP/30-11-2022_04-25-14.txt", "1866.74"),
    ("lambda-bertl-squad-fp16-a100-1g", "A100 80GB SXM4", "A100 80GB SXM4", 1, "bert_large_squad", "fp16", 112, 152, "A100_80GB_SXM4_v1", "PyTorch_bert_large_squad_FP16/19-11-2022_18-45-37.txt", "152.85"),
    ("lambda-bertl-squad-fp16-h100-8g", "8x H100 80GB SXM5", "H100 80GB SXM5", 8, "bert_large_squad", "fp16", 112, 2167, "8xH100_80GB_SXM5_v1", "PyTorch_bert_large_squad_FP16/14-02-2023_07-25-34.txt", "2167.847"),
]
for rid, sysname, gpu, n, task, prec, mb, val, rdir, logf, logval in LAMBDA:
    csvname = f"pytorch-train-throughput-{prec}.csv"
    chk = [(LB, LB_C, "pytorch/" + csvname, f"{sysname},{n}.0,"), (LB, LB_C, "pytorch/" + csvname, f",{val}.0,"),
           (LB, LB_C, f"pytorch/pytorch-train-bs-{prec}.csv", f"{sysname},{n},")]
    if logval:
        chk.append((LB, LB_C, f"pytorch/results/{rdir}/{logf}", logval))
    par = f"multiproc.py --nproc_per_node {n}" if task == "resnet50" else f"torch.distributed.launch --nproc_per_node={n}"
    if task == "resnet50":
        amp = "--amp --static-loss-scale 256 (amp : True)" if prec == "fp16" else "no --amp (FP32 params; PyTorch's default TF32 convolutions on A100/H100 not switched off)"
        detail = (f"ImageNet shapes, synthetic data (--data-backend synthetic); memory_format : nchw (log PARAMETER line); "
                  f"micro-batch {mb}/GPU (--batch-size {mb}); {amp}; DLE Classification/ConvNets main.py (LambdaLabsML "
                  f"DeepLearningExamples fork, lambda/benchmark branch); NGC pytorch:22.09-py3 (compile_results_pytorch.py "
                  f"'version 1'); --prof 100 iterations; Summary train.compute_ips")
        metric, unit, model = "training throughput (resnet50 column; the log's Summary train.compute_ips)", "images/s", "resnet50"
        nchg = dict(parallelism=f"DP={n}")
    else:
        detail = (f"seq 384 (--max_seq_length=384, --doc_stride=128); SQuAD v1.1 fine-tuning (run_squad.py --do_train, "
                  f"bert-large-uncased); micro-batch {mb}/GPU (--train_batch_size={mb}); --fp16 (apex amp O2: 'FP16 training "
                  f"with FP32 batchnorm and FP32 master weights'); --max_steps=100; training_sequences_per_second over e2e_train_time "
                  f"(includes the first iterations); NGC pytorch:22.09-py3")
        metric, unit, model = "training throughput (bert_large_squad column; the log's training_sequences_per_second)", "training_sequences_per_second", "bert_large_squad"
        nchg = dict(parallelism=f"DP={n}", model="BERT-Large (SQuAD v1.1 fine-tuning)", unit="sequences/s")
    R((rid, f"{sysname} (Lambda)", gpu, n, 1, NS, model, detail, prec, mb * n, par, metric, val, unit,
       lb + csvname + " (row '" + sysname + "') ; batch " + lb + f"pytorch-train-bs-{prec}.csv ; log " + lb + f"results/{rdir}/{logf} ; "
       "config " + lb + "scripts/config_v1/config_pytorch_80GB.sh"), chk, **nchg)

# ---------------------------------------------------------------- 4. MLPerf Training v1.0 (NVIDIA, Dell)
M10 = "/work/.mirror/mlcommons+training_results_v1.0/repo"
M10_C = "50619b5df63f1d646715a82c1fb8c35f271e25fa"
m10 = f"https://github.com/mlcommons/training_results_v1.0/blob/{M10_C}/"
# (id, submitter dir, system dir, submission_platform, accelerator_model_name, gpus, nodes, per-node GPUs, host net,
#  local batch, global batch, epoch-10 throughput (line), config)
MLP = [
    ("mlp10-rn50-dgxa100-1n", "NVIDIA", "dgxa100_ngc21.05_mxnet", "1xNVIDIA DGX A100", "NVIDIA A100-SXM4-80GB (400W)", 8, 1,
     "Compute: 8x ConnectX-6 IB HDR 200Gb/Sec; NVLINK 3.0, NVSWITCH 2.0 600GB/s", 408, 3264, "26737.207176670036", 748,
     "NVIDIA/benchmarks/resnet/implementations/mxnet/config_DGXA100.sh"),
    ("mlp10-rn50-dgxa100-8n", "NVIDIA", "dgxa100_n8_ngc21.05_mxnet", "8xNVIDIA DGX A100", "NVIDIA A100-SXM4-80GB (400W)", 64, 8,
     "Compute: 8x ConnectX-6 IB HDR 200Gb/Sec per node; NVLINK 3.0, NVSWITCH 2.0 600GB/s", 204, 13056, "200687.82935660917", 2580,
     "NVIDIA/benchmarks/resnet/implementations/mxnet/config_DGXA100_multi_8x8x204.sh"),
    ("mlp10-rn50-dell-xe8545-1n", "Dell", "XE8545x4A100-SXM-80GB", "1xXE8545x4A100-SXM-80GB", "NVIDIA A100-SXM-80GB (500W)", 4, 1,
     "2x ConnectX-6 IB HDR 200Gb/Sec; NVLink 3.0 600GB/s; 4 accelerators per node", 408, 1632, "13571.453388610986", 812,
     "Dell/benchmarks/resnet/implementations/mxnet/config_XE8545.sh"),
    ("mlp10-rn50-dell-2xxe8545", "Dell", "2xXE8545x4A100-SXM-80GB", "2xXE8545x4A100-SXM-80GB", "NVIDIA A100-SXM-80GB (500W)", 8, 2,
     "2x ConnectX-6 IB HDR 200Gb/Sec per node; NVLink 3.0 600GB/s; 4 accelerators per node", 408, 3264, "25384.402091511478", 758,
     "Dell/benchmarks/resnet/implementations/mxnet/config_XE8545_2x4x408.sh"),
    ("mlp10-rn50-dell-dss8440-pcie", "Dell", "DSS8440x8A100-PCIE-40GB", "1xDSS8440x8A100-PCIE-40GB", "NVIDIA A100-PCIE-40GB (250W)", 8, 1,
     "1x ConnectX-5 IB EDR 100Gb/Sec; accelerator interconnect N/A (PCIe 3.0x16)", 408, 3264, "20809.939296208486", 744,
     "Dell/benchmarks/resnet/implementations/mxnet/config_DSS8440x8A100-PCIE-40GB.sh"),
]
for rid, sub, sysd, plat, acc, n, nodes, net, lb_, gbs, val, line, cfg in MLP:
    res = f"{sub}/results/{sysd}/resnet/result_0.txt"
    detail = (f"MLPerf ImageNet; MXNet 21.05 (NGC); DALI; LARS (OPTIMIZER sgdwfastlars); {lb_}/GPU (d_batch_size {lb_}, "
              f"BATCHSIZE in the config); {n // nodes} GPUs a node (system JSON accelerators_per_node)")
    R((rid, f"{plat} (MLPerf Training v1.0 closed, {sub})", acc, n, nodes, net, "ResNet-50 v1.5", detail,
       "float16 (run_and_time.sh --dtype float16)", gbs, "KVSTORE=horovod",
       f"training throughput, epoch 10 (tracked_stats imgs_sec / throughput key, line {line})", val, "imgs_sec",
       m10 + res + " ; system " + m10 + f"{sub}/systems/{sysd}.json ; config " + m10 + cfg),
      [(M10, M10_C, res, val), (M10, M10_C, f"{sub}/systems/{sysd}.json", acc)],
      unit="images/s", parallelism=f"DP={n}", precision="FP16")
res = "NVIDIA/results/dgxa100_ngc21.05_pytorch/bert/result_0.txt"
detail = ("MLPerf BERT-Large pretraining, phase 2 from the phase-1 checkpoint; seq 512 (--max_seq_length=512), "
          "--unpad --unpad_fmha --exchange_padding --dense_seq_output (padding removed: real sequence lengths); LAMB; "
          "56/GPU (config_DGXA100_1x8x56x1.sh BATCHSIZE 56, GRADIENT_STEPS 1); 3,000,256 train_samples; "
          "raw_train_time 1450.16 s (the log's summary line)")
R(("mlp10-bert-dgxa100-1n", "1xNVIDIA DGX A100 (MLPerf Training v1.0 closed, NVIDIA)", "NVIDIA A100-SXM4-80GB (400W)", 8, 1,
   "Compute: 8x ConnectX-6 IB HDR 200Gb/Sec; NVLINK 3.0, NVSWITCH 2.0 600GB/s", "BERT-Large", detail,
   "--fp16 (run_with_docker.sh)", 448, "8 GPUs (torch.distributed)",
   "training throughput (training_sequences_per_second, summary line 197)", "2193.410654407418", "training_sequences_per_second",
   m10 + res + " ; config " + m10 + "NVIDIA/benchmarks/bert/implementations/pytorch/config_DGXA100_1x8x56x1.sh ; flags "
   + m10 + "NVIDIA/benchmarks/bert/implementations/pytorch/run_with_docker.sh"),
  [(M10, M10_C, res, "2193.410654407418")],
  unit="sequences/s", parallelism="DP=8", precision="FP16")

# ---------------------------------------------------------------- 5. nanotron / Ultra-Scale Playbook benchmark summary
NT = "/work/.mirror/huggingface+nanotron/repo"
NT_C = "c252843039cc167ff8d6894b87172af4637eb14b"   # 2025-03-10 "add benchs": docs/benchmark_summary.svg, scripts/scaling_benchmarks.py
nt = f"https://github.com/huggingface/nanotron/blob/{NT_C}/"
NT_SVG = (NT, NT_C, "docs/benchmark_summary.svg")
# shapes from scripts/scaling_benchmarks.py (layers, hidden, heads, intermediate) with vocab 131072, MHA (kv heads =
# heads), tied embeddings below intermediate 10,000; the parameter counts reproduce the plot's 1.34 / 8.86 / 80.0
SHAPES = {"1.34": (16, 2048, 32, 8192, True), "8.86": (32, 4096, 32, 14336, False), "80.0": (80, 8192, 64, 28672, False)}
NORM_MODEL = {"1.34": ("GPT (nanotron 1.34B read as a GPT decoder)", ""), "8.86": ("Llama 3 8B (stands for nanotron's 8.86B)", ""),
              "80.0": ("Llama 3 70B (stands for nanotron's 80B)", "")}
# (size, nodes, DP, TP, PP, GAS, MBS, ZeRO, MFU as printed, memory as printed)
NANO = [("1.34", 1, 4, 1, 2, 16, 4, 1, "44.32", "41.76GB"), ("8.86", 8, 32, 1, 2, 8, 1, 1, "39.50", "59.09GB"),
        ("80.0", 8, 1, 4, 16, 256, 1, 0, "30.65", "63.07GB"), ("80.0", 64, 32, 16, 1, 4, 2, 1, "17.79", "53.46GB"),
        ("1.34", 64, 128, 2, 2, 1, 2, 1, "5.25", "8.40GB")]
for size, nodes, dp, tp, pp, gas, mbs, zero, mfu, mem in NANO:
    l, h, a, f, tied = SHAPES[size]
    gpus = nodes * 8
    assert dp * tp * pp == gpus and dp * gas * mbs == 256, size
    pars = f"DP: {dp:<4} TP: {tp:<4} PP: {pp:<4}".rstrip()
    gasmbs = f"GAS: {gas:<4} MBS: {mbs:<4}".rstrip()
    detail = (f"{l} layers; hidden {h}; {a} heads ({a} key/value heads: NUM_KEY_VALUE_HEADS None); intermediate_size {f} "
              f"(SwiGLU, silu); seq 4096 (SEQUENCE_LENGTHS); vocab 131072 (VOCAB_SIZES); tie_word_embeddings {tied}; "
              f"{gasmbs}; ZeRO-{zero}; tp_mode REDUCE_SCATTER; accumulate_grad_in_fp32; pp_engine 1f1b; no activation "
              f"recompute in the bench config; memory {mem} (plot); GBS 1M tokens (512 * 2048) = 256 x 4096")
    nm, _ = NORM_MODEL[size]
    ndetail = detail + f"; MBS {mbs}; {gas} accumulation; no activation checkpointing"
    R((f"nt-{size.replace('.0', '')}b-{nodes}n", f"{nodes} node{'s' if nodes > 1 else ''} x 8 H100 (Hugging Face cluster, hopper-prod partition)",
       "H100", gpus, nodes, NS, f"{size.replace('.0', '')}B (nanotron Llama)", detail, "bfloat16 (bench config dtype)", 256, pars,
       "MFU (benchmark_summary.svg: MFU and Memory Usage for Best Configurations; model FLOPs of llama.py get_flops)",
       mfu, "MFU",
       nt + "docs/benchmark_summary.svg (README 'Benchmarks') ; shapes " + nt + "scripts/scaling_benchmarks.py ; base config "
       "https://github.com/huggingface/nanotron/blob/67c5ebb6a925cb47026b22013af8bd1bb6c46d93/examples/config_tiny_llama_bench.yaml"),
      [NT_SVG + (f"<!-- {mfu} -->",), NT_SVG + (f"<!-- {mem} -->",), NT_SVG + (pars,), NT_SVG + (gasmbs,)],
      model=nm, model_detail=ndetail, parallelism=f"DP={dp}; TP={tp}; PP={pp}" + ("; ZeRO-1" if zero else ""),
      unit="TFLOP/s/GPU", value=f"{float(mfu) * 9.89:.1f}",
      metric="MFU x 989 TFLOP/s (H100 SXM BF16 dense peak; ASSUMPTION: the plot's MFU is model TFLOP/s ÷ 989), model FLOPs")

# ---------------------------------------------------------------- 6. MaxText A3 Llama2-7B README
MX = "/work/.mirror/AI-Hypercomputer+maxtext/repo"
MX_C = "efb6d9e4a2856198f8272dcbfb7d9c91eda0728e"   # 2024-04-09 "Add README for llama2-7B"
mx = f"https://github.com/AI-Hypercomputer/maxtext/blob/{MX_C}/MaxText/configs/a3/llama_2_7b/"
MX_R = (MX, MX_C, "MaxText/configs/a3/llama_2_7b/README.md")
for vms, val in [(1, 492), (4, 407), (16, 375)]:
    gpus = 8 * vms
    detail = ("seq 4096 (max_target_length=4096); per_device_batch_size=4; remat_policy=minimal_flash; attention=cudnn_flash_te; "
              "scan_layers=false; dataset_type=synthetic; steps=30; dtype bfloat16, weight_dtype float32 (base.yml); "
              "TFLOP count: 6·params·tokens + causal attention (maxtext_utils.calculate_tflops_training_per_device)")
    par = f"dcn_data_parallelism={vms} ici_fsdp_parallelism=8"
    R((f"mt-llama2-7b-{vms}xa3", f"{vms}x A3 (h100-80gb-8), Google Cloud", "A3 (h100-80gb-8)", gpus, vms, NS, "Llama2-7B", detail,
       "bfloat16 (base.yml dtype)", 4 * gpus, par, "TFLOP/sec/chip (README table, expected performance)", val, "TFLOP/sec/chip",
       mx + f"README.md ; script " + mx + f"{vms}vm.sh ; base https://github.com/AI-Hypercomputer/maxtext/blob/{MX_C}/MaxText/configs/base.yml"),
      [MX_R + ((f"| {vms}x A3 (h100-80gb-8)", f"| {val} "),)],
      unit="TFLOP/s/GPU", parallelism=("FSDP=8" if vms == 1 else f"DP={vms}; FSDP=8"),
      model_detail=detail + "; selective recompute")

# ---------------------------------------------------------------- 7. DeepSpeed (BERT tutorial; Azure blog)
DS = "/work/.mirror/deepspeedai+DeepSpeed/repo"
DS_C = "fd405169232dd83bdc7883df1c7d707d482e1be6"   # 2025-02-04, last change to both files (org rename in links only)
ds = f"https://github.com/deepspeedai/DeepSpeed/blob/{DS_C}/docs/"
DS_T = (DS, DS_C, "docs/_tutorials/bert-pretraining.md")
DS_A = (DS, DS_C, "docs/_posts/2022-07-26-deepspeed-azure.md")
for rid, seq, mb, val, unit, printed, metric in [
        ("ds-bertl-s128-v100-sps", 128, 64, 272, "samples/second", "272 and 52 samples/second", "single GPU throughput (samples/second)"),
        ("ds-bertl-s512-v100-sps", 512, 8, 52, "samples/second", "272 and 52 samples/second", "single GPU throughput (samples/second)"),
        ("ds-bertl-s128-v100-tflops", 128, 64, 64, "teraflops", "64 and 53 teraflops", "single GPU throughput (teraflops)")]:
    detail = (f"seq {seq}; BERT-Large pre-training with DeepSpeed transformer kernels (the highest labeled point of the "
              f"single-GPU figure); gradient accumulation step of 10; micro-batch {mb}/GPU (ASSUMPTION: the tutorial's "
              f"'Train micro batch size per gpu' for {seq} sequences; the figure's batch is not in the text); "
              f"{mb} x 10 accumulation")
    R((rid, "single NVIDIA V100 GPU", "V100", 1, 1, NS, "BERT-Large", detail, "FP16 mixed precision (tutorial: --fp16)",
       mb * 10, "single GPU", metric, val, unit, ds + "_tutorials/bert-pretraining.md (DeepSpeed Single GPU Throughput Results)"),
      [DS_T + (printed,)], parallelism="DP=1", **({"unit": "TFLOP/s"} if unit == "teraflops" else {}))
for rid, name, l, h, a, seq, gpus, mb, val, printed in [
        ("dsaz-175b-256g", "175B", 96, "12,288", 96, 512, 256, 32, "204.49", "**204.49 TFLOPs/GPU**"),
        ("dsaz-1t-1024g", "1T", 128, "25,600", 160, 1024, 1024, 8, "165.36", "**165.36 TFLOPs/GPU**"),
        ("dsaz-2t-1024g", "2T", 160, "32,768", 128, 1024, 1024, 8, "157", "157 TFLOPs/GPU")]:
    detail = (f"{l} layers; hidden {h}; {a} heads (Table 2); seq {seq}; micro-batch {mb}/GPU; vocab {NS}; "
              f"DeepSpeed 0.6.2, PyTorch 1.10.2, Megatron-DeepSpeed (Table 1); ZeRO-3 with CPU offloading (activation and "
              f"optimizer states in host memory, not modelled); peak of the reported runs")
    R((rid, f"{gpus // 8} NDm A100 v4-series VMs (Azure): 8 A100 80GB each, AMD EPYC 7V12", "A100 80GB", gpus, gpus // 8,
       "one 200 Gb/s HDR InfiniBand a GPU", f"{name} model", detail, NS, mb * gpus,
       "ZeRO-3; ZeRO powered data parallelism (no tensor/pipeline parallelism)",
       "peak throughput of the system (TFLOPs/GPU), formula used by the Megatron paper: 96·B·s·l·h²·(1 + s/6h + V/(16·l·h))",
       val, "TFLOPs/GPU", ds + "_posts/2022-07-26-deepspeed-azure.md (Table 2; Figures 5-7 text)"),
      [DS_A + (printed,), DS_A + (f"| {h}",)],
      model=f"GPT ({name}, Megatron-DeepSpeed)", parallelism=f"DP={gpus}; ZeRO-3",
      metric="peak throughput (TFLOPs/GPU), hardware FLOPs: Megatron paper formula 96·B·s·l·h²·(1 + s/6h + V/(16·l·h))")

# ---------------------------------------------------------------- 8. NeMo long-sequence performance (NeMo 24.03.01)
NM = "/work/.mirror/NVIDIA+NeMo/repo"
NM_C = "8275bf6cfd2cc4c11615821479f5100d4f0dd4fd"   # 2024-10-21 "Long context performance doc hot fix"
nm = f"https://github.com/NVIDIA/NeMo/blob/{NM_C}/docs/source/performance/performance_long_sequence.md"
NM_F = (NM, NM_C, "docs/source/performance/performance_long_sequence.md")
for k, gpus, tp, pp, dp, cp, val in [(128, 128, 4, 1, 8, 4, "555"), (1024, 1024, 8, 1, 4, 32, "536")]:
    detail = (f"seq {k * 1024} (SeqLen (K) {k}); container NeMo24.03.01.framework; With CP columns; global batch {NS} "
              f"(ASSUMPTION: one sequence per data-parallel replica, {dp})")
    R((f"nemo-l2-7b-fp8-{k}k-{gpus}g", f"DGX-H100 ({gpus // 8} nodes)", "H100", gpus, gpus // 8, NS, "LLAMA2-7B", detail,
       "FP8", dp, f"TP {tp}; PP {pp}; DP {dp}; CP {cp}", "pre-training performance with CP (TFLOPS / GPU)", val, "TFLOPS / GPU",
       nm + " (LLAMA2-7B (FP8) table)"),
      [NM_F + (f"<td>{val}</td>",), NM_F + (f"<td>{k}</td>",)],
      parallelism=f"TP={tp}; PP={pp}; DP={dp}; CP={cp}",
      metric="pre-training performance with CP (model TFLOPS / GPU, Megatron-Core's count)")

# ---------------------------------------------------------------- 9. timm train benchmark (RTX 3090): a GPU without a preset
TM = "/work/.mirror/huggingface+pytorch-image-models/repo"
TM_C = "c865028c34fc05cc7deea8e753b30d8cd1952591"   # 2022-07-27 "Update benchmark with latest model adds"
tm = f"https://github.com/huggingface/pytorch-image-models/blob/{TM_C}/results/"
R(("timm-vit-b16-rtx3090", "1x RTX 3090 (timm benchmark.py, PyTorch 1.12, CUDA 11.3)", "RTX 3090", 1, 1, NS,
   "vit_base_patch16_224", "image 224 (train_img_size); batch 192 (train_batch_size); AMP; NCHW; 86.57M params; train_step_time 490.391 ms",
   "amp", 192, "single GPU", "train_samples_per_sec", "390.86", "train_samples_per_sec",
   tm + "benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv ; " + tm + "README.md (Benchmark)"),
  [(TM, TM_C, "results/benchmark-train-amp-nchw-pt112-cu113-rtx3090.csv", "vit_base_patch16_224,390.86,490.391,192,224,86.57")],
  model="ViT-B/16", unit="samples/s", parallelism="DP=1", metric="training throughput (train_samples_per_sec)")


def check():
    bad = 0
    for rid, repo, commit, path, needle in checks:
        text = subprocess.run(["git", "-C", repo, "show", f"{commit}:{path}"], capture_output=True, text=True).stdout
        found = any(all(n in line for n in needle) for line in text.splitlines()) if isinstance(needle, tuple) else needle in text
        if not found:
            print("NOT FOUND", rid, repr(needle), path); bad += 1
    print(f"value check: {len(checks) - bad}/{len(checks)} GitHub-sourced strings found in the pinned files "
          f"({len({c[0] for c in checks})} rows)")
    return bad


def write(name, data):
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(H)
        w.writerows(data)


# ---------------------------------------------------------------- probes: one published phrasing at a time
def probes():
    byid = {r[0]: dict(zip(H, r)) for r in norm}
    pub = {r[0]: dict(zip(H, r)) for r in rows}
    P, why_of = [], {}

    def p(base, pid, why, **ch):
        r = dict(byid[base]); r.update({k: str(v) for k, v in ch.items()}); r["id"] = pid
        P.append([r[h] for h in H]); why_of[pid] = why

    p("fa-gpt3-1.3b-8g", "probe-unit-tokens/sec", "flash-attention README unit (whole system)", unit="tokens/sec")
    p("fa-gpt3-1.3b-8g", "probe-value-169k", "README prints 169k (value with a k suffix)", value="169k")
    p("fa-gpt3-1.3b-8g", "probe-par-DDPStrategyZero1", "flash-attention trainer strategy", parallelism=pub["fa-gpt3-1.3b-8g"]["parallelism"])
    p("fa-gpt3-125m-8g", "probe-par-trainer.devices", "Lightning trainer.devices=8 (DDP)", parallelism=pub["fa-gpt3-125m-8g"]["parallelism"])
    p("fa-gpt3-1.3b-8g", "probe-model-GPT3-1.3B", "README model name", model="GPT3-1.3B")
    p("fa-gpt3-1.3b-8g", "probe-gpu-A100-80GB-SXM4-80GB-400W", "README GPU wording", gpu="A100 80GB SXM4 80GB (400W)")
    p("fa2-gpt3-2.7b-8k", "probe-unit-TFLOPs/s", "FlashAttention-2 Table 1 unit (per GPU in the caption)", unit="TFLOPs/s")
    p("fa2-noflash-gpt3-2.7b-8k", "probe-detail-Without-FlashAttention", "paper's column name instead of 'no flash attention'",
      model_detail=byid["fa2-noflash-gpt3-2.7b-8k"]["model_detail"].replace("; no flash attention", ""))
    p("fa2-gpt3-2.7b-8k", "probe-par-not-stated", "paper gives no parallelism", parallelism=NS)
    p("lambda-bertl-squad-fp16-a100-1g", "probe-model-bert_large_squad", "Lambda task name", model="bert_large_squad")
    p("lambda-bertl-squad-fp16-a100-1g", "probe-unit-training_sequences_per_second", "DLE log key as unit", unit="training_sequences_per_second")
    p("lambda-rn50-fp16-a100-1g", "probe-par-multiproc", "DLE launcher words", parallelism="multiproc.py --nproc_per_node 1")
    p("lambda-rn50-fp32-a100-1g", "probe-precision-tf32", "Lambda 'fp32' run as PyTorch's default TF32 convolutions", precision="tf32")
    p("lambda-rn50-fp16-a100-1g", "probe-detail-no-nchw", "same row without 'memory_format : nchw' (is it read?)",
      model_detail=byid["lambda-rn50-fp16-a100-1g"]["model_detail"].replace("memory_format : nchw (log PARAMETER line); ", ""))
    p("lambda-rn50-fp16-v100-1g", "probe-gpu-V100-SXM2-16GB", "Lambda 'LambdaCloud V100 16GB' against the SXM2 name", gpu="V100-SXM2-16GB")
    p("mlp10-rn50-dgxa100-1n", "probe-unit-imgs_sec", "MLPerf tracked_stats key", unit="imgs_sec")
    p("mlp10-rn50-dgxa100-1n", "probe-par-KVSTORE=horovod", "MLPerf MXNet config", parallelism="KVSTORE=horovod")
    p("mlp10-rn50-dgxa100-1n", "probe-precision-float16-dtype", "run_and_time.sh --dtype", precision="float16 (run_and_time.sh --dtype float16)")
    p("mlp10-bert-dgxa100-1n", "probe-bert-packed", "MLPerf v1.0 BERT read as packed (about 2 sequences a 512 sample)",
      model_detail=byid["mlp10-bert-dgxa100-1n"]["model_detail"] + "; packed")
    p("mlp10-rn50-dell-2xxe8545", "probe-nodes-empty", "2 x 4-GPU nodes with nodes left empty", nodes="")
    p("nt-8.86b-8n", "probe-unit-MFU", "nanotron plot unit (percent)", unit="MFU", value="39.50")
    p("nt-8.86b-8n", "probe-par-DP:-TP:-PP:", "nanotron annotation", parallelism=pub["nt-8.86b-8n"]["parallelism"])
    p("nt-8.86b-8n", "probe-detail-GAS:-MBS:", "nanotron annotation without 'MBS N; N accumulation'",
      model_detail=pub["nt-8.86b-8n"]["model_detail"])
    p("nt-8.86b-8n", "probe-model-llama-by-sizes", "a Llama of model_detail's sizes (no published name)", model="Llama (nanotron 8.86B)")
    p("mt-llama2-7b-4xa3", "probe-unit-TFLOP/sec/chip", "MaxText README unit", unit="TFLOP/sec/chip")
    p("mt-llama2-7b-4xa3", "probe-par-dcn-ici", "MaxText mesh flags", parallelism="dcn_data_parallelism=4 ici_fsdp_parallelism=8")
    p("mt-llama2-7b-4xa3", "probe-detail-remat_policy", "MaxText remat policy without 'selective recompute'",
      model_detail=pub["mt-llama2-7b-4xa3"]["model_detail"])
    p("ds-bertl-s128-v100-tflops", "probe-unit-teraflops", "DeepSpeed tutorial unit", unit="teraflops")
    p("ds-bertl-s128-v100-sps", "probe-par-single-GPU", "single GPU", parallelism="single GPU")
    p("ds-bertl-s128-v100-sps", "probe-gpu-V100-SXM2-32GB", "bare V100 against the 32GB SXM2 name", gpu="V100-SXM2-32GB")
    p("dsaz-175b-256g", "probe-model-175B", "DeepSpeed blog model name", model="175B model")
    p("dsaz-175b-256g", "probe-par-ZeRO-powered-DP", "DeepSpeed blog parallelism words", parallelism=pub["dsaz-175b-256g"]["parallelism"])
    p("dsaz-175b-256g", "probe-par-ZeRO-3-only", "'ZeRO-3' without a DP degree", parallelism="ZeRO-3")
    p("dsaz-175b-256g", "probe-metric-megatron-formula", "metric naming the Megatron formula without 'hardware'", metric=pub["dsaz-175b-256g"]["metric"])
    p("nemo-l2-7b-fp8-128k-128g", "probe-par-TP-4-space", "NeMo table columns as 'TP 4; PP 1; ...'", parallelism=pub["nemo-l2-7b-fp8-128k-128g"]["parallelism"])
    p("nemo-l2-7b-fp8-128k-128g", "probe-metric-TFLOPS-no-model", "'TFLOPS / GPU' without 'model' (6N convention)", metric=pub["nemo-l2-7b-fp8-128k-128g"]["metric"])
    p("nemo-l2-7b-fp8-1024k-1024g", "probe-metric-TFLOPS-no-model-1M", "'TFLOPS / GPU' without 'model' at 1M tokens", metric=pub["nemo-l2-7b-fp8-1024k-1024g"]["metric"])
    p("timm-vit-b16-rtx3090", "probe-model-vit_base_patch16_224-on-A100", "timm model name (row moved to an A100 80GB to get past the GPU)",
      gpu="A100-SXM4-80GB", model="vit_base_patch16_224")
    p("timm-vit-b16-rtx3090", "probe-unit-train_samples_per_sec-on-A100", "timm column name as unit (row moved to an A100 80GB)",
      gpu="A100-SXM4-80GB", unit="train_samples_per_sec")
    write("probes.csv", P)
    with open(os.path.join(HERE, "probes-why.txt"), "w") as f:
        for k, v in why_of.items():
            f.write(f"{k}\t{v}\n")


if __name__ == "__main__":
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    write("rows.csv", rows)
    write("rows-normalized.csv", norm)
    print(len(rows), "rows")
    status = 1 if check() else 0
    probes()
    sys.exit(status)
