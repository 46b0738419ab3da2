# Writes set7/rows.csv. Every value below was read from the file its URL pins (see NOTES.md).
import csv, os
H = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source".split(",")
R = []

# ---------------------------------------------------------------------------------------------
# microsoft/Megatron-DeepSpeed, examples_deepspeed READMEs and their scripts
MD = "f4157bea69f3df8c6cb66f2ebcda66ba03d1288e"
MDB = f"https://github.com/microsoft/Megatron-DeepSpeed/blob/{MD}"

# (a) deepspeed4science/megatron_long_seq_support/README.md, "Performance Comparison between Old Megatron-DeepSpeed and New Megatron-DeepSpeed"
LS = (f"{MDB}/examples_deepspeed/deepspeed4science/megatron_long_seq_support/README.md#performance-comparison-between-old-megatron-deepspeed-and-new-megatron-deepspeed"
      f" (script: {MDB}/examples_deepspeed/deepspeed4science/megatron_long_seq_support/pretrain_gpt_30B_seq_parallel.sh)")
LSSYS = "4 NVIDIA DGX A100-40GB nodes"
LSIC = "4 NVIDIA DGX A100-40GB nodes, connected through 8 HDR InfiniBand (200Gb/s per HDR)"
LSD = ("the README's table gives Sequence Length and TFLOPS only and does not name the model; the folder's two scripts are GPT1.3B (mp_size=8) "
       "and GPT30B, pretrain_gpt_30B_seq_parallel.sh (mp_size=32, which matches TP=32 on 32 GPUs): model_size=30; num_layers=64; hidden_size=6144; "
       "num_attn_heads=64; global_batch_size=2; batch_size=1 (--micro-batch-size); seq_len=$(( 1024 * $n_k )) (n_k=2 in the script; the table varies it); "
       "pp_size=1; zero_stage=0; enable_sequence_parallel=1 (--sequence-parallel); activation_checkpoint=\"true\" (--checkpoint-activations); "
       "--use-flash-attn-triton; --fp16; GPT-2 vocab (gpt2-vocab.json)")
for seq, v in [("2k", 68), ("8k", 86), ("32k", 100), ("128k", 119), ("256k", 94)]:
    R.append([f"mds-longseq-new-{seq}-32g", LSSYS, "A100-40GB", 32, 4, LSIC, "GPT (model not named in the table; GPT30B script)",
              f"New Megatron-DeepSpeed; Sequence Length {seq}; {LSD}", "fp16 (script --fp16)", 2, "TP size=32",
              "New Megatron-DeepSpeed  (TFLOPS)", v, "TFLOPS", LS])
for seq, v in [("2k", 25), ("4k", 28)]:
    R.append([f"mds-longseq-old-{seq}-32g", LSSYS, "A100-40GB", 32, 4, LSIC, "GPT (model not named in the table; GPT30B script)",
              f"Old Megatron-DeepSpeed (before the rebase; no script given for it); Sequence Length {seq}; 8k and longer were OoM; "
              f"for the new code the table's model is presumably the one of {LSD}", "not stated", 2, "TP=32",
              "Old Megatron-DeepSpeed  (TFLOPS)", v, "TFLOPS", LS])

# (b) rebase/README.md (July 2023 sync with NVIDIA/Megatron-LM)
RB = f"{MDB}/examples_deepspeed/rebase/README.md"
def rbs(s): return f"{MDB}/examples_deepspeed/rebase/{s}"
V100SYS = "128 V100 GPUs (8 DGX-2 nodes, 16 GPU per node)"
V100IC = "inter-node network is InfiniBand with around 660 Gbps measured bandwidth"
D13 = ("GPT-3 13B, 3D parallelism; DeepSpeed v0.9.5; ds_pretrain_gpt_13B.sh: seq_len=2048; num_layers=40; hidden_size=5120; num_attn_heads=40; "
       "global_batch_size=1024; batch_size=2 (micro batch size per GPU); mp_size=4; pp_size=8; zero_stage=1; activation_checkpoint=\"true\" "
       "(--checkpoint-activations); --fp16; Validation loss at step 200 {loss}")
R.append(["mds-rebase-gpt3-13b-128g-before", V100SYS, "V100", 128, 8, V100IC, "GPT-3 13B",
          D13.format(loss="5.73") + "; Before sync (its script is in the before_rebase branch: examples/before_rebase_test/ds_pretrain_gpt_13B.sh, not read; the values above are the after-sync script's)",
          "fp16 (script --fp16)", 1024, "3D parallelism (DeepSpeed ZeRO stage 1, Megatron-LM's tensor parallelism, DeepSpeed's pipeline parallelism)",
          "TFLOPs (per GPU)", 50, "TFLOPs (per GPU)", f"{RB}#verified-cases-and-results (script: {rbs('ds_pretrain_gpt_13B.sh')})"])
R.append(["mds-rebase-gpt3-13b-128g-after", V100SYS, "V100", 128, 8, V100IC, "GPT-3 13B",
          D13.format(loss="5.71") + "; After sync", "fp16 (script --fp16)", 1024,
          "3D parallelism (DeepSpeed ZeRO stage 1, Megatron-LM's tensor parallelism, DeepSpeed's pipeline parallelism)",
          "TFLOPs (per GPU)", 55.6, "TFLOPs (per GPU)", f"{RB}#verified-cases-and-results (script: {rbs('ds_pretrain_gpt_13B.sh')})"])
D125 = ("toy example script {s}: GPT-3 Small 125M; seq_len=2048; num_layers=12; hidden_size=768; num_attn_heads=12; global_batch_size=256; "
        "batch_size=2 (micro batch size per GPU); mp_size=2; pp_size=2; zero_stage=1; activation_checkpoint=\"true\" (--checkpoint-activations); --fp16{fa}")
R.append(["mds-rebase-gpt3-125m-8g-nofa", "8 A100 GPUs", "A100", 8, 1, "not stated", "GPT-3 Small 125M",
          D125.format(s="ds_pretrain_gpt_125M.sh", fa="; without flash attention"), "fp16 (script --fp16)", 256,
          "mp_size=2; pp_size=2; zero_stage=1", "training throughput (TFLOPs per GPU)", 25, "TFLOPs per GPU",
          f"{RB}#flash-attention (script: {rbs('ds_pretrain_gpt_125M.sh')})"])
R.append(["mds-rebase-gpt3-125m-8g-fa1", "8 A100 GPUs", "A100", 8, 1, "not stated", "GPT-3 Small 125M",
          D125.format(s="ds_pretrain_gpt_125M_flashattn.sh", fa="; --use-flash-attn (FlashAttention (1.0,4))"), "fp16 (script --fp16)", 256,
          "mp_size=2; pp_size=2; zero_stage=1", "training throughput (TFLOPs per GPU)", 32, "TFLOPs per GPU",
          f"{RB}#flash-attention (script: {rbs('ds_pretrain_gpt_125M_flashattn.sh')})"])
D27 = ("'scaling up the model to 2.7B using the same script' (ds_pretrain_gpt_125M_flashattn.sh with its commented GPT-3 2.7B block: num_layers=32; "
       "hidden_size=2560; num_attn_heads=32; global_batch_size=512); seq_len=2048; batch_size=2; mp_size=2; pp_size=2; zero_stage=1; "
       "activation_checkpoint=\"true\"; --fp16; --use-flash-attn; {fa}; GPU count not restated for 2.7B (the 125M comparison was on 8 A100 GPUs)")
R.append(["mds-rebase-gpt3-2.7b-8g-fa1", "8 A100 GPUs (as for the 125M comparison)", "A100", 8, 1, "not stated", "GPT-3 2.7B",
          D27.format(fa="FlashAttention 1.x"), "fp16 (script --fp16)", 512, "mp_size=2; pp_size=2; zero_stage=1",
          "training throughput", 121, "TFLOPs", f"{RB}#flash-attention (script: {rbs('ds_pretrain_gpt_125M_flashattn.sh')})"])
R.append(["mds-rebase-gpt3-2.7b-8g-fa2", "8 A100 GPUs (as for the 125M comparison)", "A100", 8, 1, "not stated", "GPT-3 2.7B",
          D27.format(fa="FlashAttention-2"), "fp16 (script --fp16)", 512, "mp_size=2; pp_size=2; zero_stage=1",
          "training throughput", 132, "TFLOPs", f"{RB}#flash-attention (script: {rbs('ds_pretrain_gpt_125M_flashattn.sh')})"])
D13B = ("GPT-3 XL 1.3B; {s}: seq_len=2048; num_layers=24; hidden_size=2048; num_attn_heads=16; global_batch_size=512; batch_size=2; "
        "mp_size=2; pp_size=1 (no_pp=\"true\"); zero_stage=0; --fp16; {ck}")
R.append(["mds-rebase-gpt3-1.3b-16g-olderckpt", "1 DGX-2 node (16 V100)", "V100", 16, 1, "single DGX-2 node", "GPT-3 XL 1.3B",
          D13B.format(s="ds_pretrain_gpt_1.3B.sh", ck="older activation checkpointing mechanism (--checkpoint-activations, DeepSpeed's _checkpointed_forward); older max allocated 15241 MB"),
          "fp16 (script --fp16)", 512, "mp_size=2; pp_size=1; zero_stage=0", "throughput", 23.11, "TFLOPs",
          f"{RB}#notestodos (script: {rbs('ds_pretrain_gpt_1.3B.sh')})"])
R.append(["mds-rebase-gpt3-1.3b-16g-newerckpt", "1 DGX-2 node (16 V100)", "V100", 16, 1, "single DGX-2 node", "GPT-3 XL 1.3B",
          D13B.format(s="ds_pretrain_gpt_1.3B_megatron_checkpointing.sh", ck="newer (Megatron-LM) activation checkpointing mechanism: --recompute-granularity full --recompute-method uniform --recompute-num-layers 1; newer max allocated 12924 MB"),
          "fp16 (script --fp16)", 512, "mp_size=2; pp_size=1; zero_stage=0", "throughput", 17.26, "TFLOPs",
          f"{RB}#notestodos (script: {rbs('ds_pretrain_gpt_1.3B_megatron_checkpointing.sh')})"])

# (c) bert_with_pile/README.md
R.append(["mds-bert-1.3b-64g", "64 NVIDIA A100 GPUs", "A100", 64, 8, "not stated", "1.3B BERT",
          "pre-training a 1.3B BERT model on the Pile; 'a throughput up to 145 TFLOPs per GPU'; with ZeRO stage-1, without model parallelism, "
          "with batch size 4096 (64 per GPU), with activation checkpointing; ds_pretrain_bert.sh (BERT 1.3B block): num_layers=24; hidden_size=2048; "
          "num_attn_heads=32; seq_len=512; --fp16; node count not stated (8 GPUs a node assumed)",
          "fp16 (script --fp16)", 4096, "ZeRO stage-1, without model parallelism", "throughput", 145, "TFLOPs per GPU",
          f"{MDB}/examples_deepspeed/bert_with_pile/README.md#bert-pre-training (script: {MDB}/examples_deepspeed/bert_with_pile/ds_pretrain_bert.sh)"])

# ---------------------------------------------------------------------------------------------
# karpathy/llm.c, scripts/run_*.sh header comments
LC = "f1e2ace651495b74ae22d45d1723443fd00ecd3a"
LCB = f"https://github.com/karpathy/llm.c/blob/{LC}"
LCX = (f" (model sizes: {LCB}/train_gpt2.cu gpt2_set_hyperparameters / gpt3_set_hyperparameters; precision: {LCB}/Makefile PRECISION ?= BF16)")
LCP = "bf16 (Makefile default PRECISION ?= BF16)"
def lcd(desc, b, t, d, extra=""):
    return (f"llm.c train_gpt2cu (CUDA, make train_gpt2cu USE_CUDNN=1); mpirun -np 8; -e \"{desc}\"; -b {b} (per-GPU, micro) batch size; "
            f"-t {t} sequence length; -d {d} total desired batch size in tokens; -r 0 (recompute: none); -z 1 (zero_stage 1){extra}")
for rid, sysn, gpu, model, desc, sizes, b, t, d, gb, v, unit, script, extra in [
        ("llmc-gpt2-124m-8xa100", "8X A100 80GB SXM ($14/hr)", "A100 80GB SXM", "GPT-2 (124M)", "d12", "depth 12: channels 768, num_heads 12",
         64, 1024, 524288, 512, 300, "ms/iter", "run_gpt2_124M.sh", "; 18,865 steps of 524,288 tokens/step; vocab 50257"),
        ("llmc-gpt2-350m-8xa100", "8X A100 80GB SXM ($14/hr)", "A100 80GB SXM", "GPT-2 (350M)", "d24", "depth 24: channels 1024, num_heads 16",
         64, 1024, 524288, 512, 820, "ms/iter", "run_gpt2_350M.sh", "; 60K steps on 524,288 tokens/step"),
        ("llmc-gpt2-774m-8xa100", "8X A100 80GB SXM ($14/hr)", "A100 80GB SXM", "GPT-2 (774M)", "d36", "depth 36: channels 1280, num_heads 20",
         32, 1024, 524288, 512, 1.7, "s/iter", "run_gpt2_774M.sh", "; 286,102 steps on 524,288 tokens/step; gradient accumulation 2 (derived: 524288 / (32 x 1024 x 8))"),
        ("llmc-gpt3-125m-8xa100", "8X A100 80GB SXM ($14/hr)", "A100 80GB SXM", "GPT-3 (125M)", "gpt3:c768", "channels 768: depth 12, head_size 64 (12 heads)",
         32, 2048, 524288, 256, 150, "ms/iter", "run_gpt3_125M.sh", "; context length 2048; 572,204 steps of 524,288 tokens/step"),
        ("llmc-gpt2-1558m-8xh100", "8X H100 80GB SXM ($28/hr)", "H100 80GB SXM", "GPT-2 (1558M)", "d48", "depth 48: channels 1600, num_heads 25",
         16, 1024, 1048576, 1024, 2.80, "s/iter", "run_gpt2_1558M.sh",
         "; -ge 1 (gelu fusion: forward); 32,000 steps on ~1M tokens/step (1,048,576 to be precise); gradient accumulation 8 (derived: 1048576 / (16 x 1024 x 8))"),
        ]:
    R.append([rid, sysn, gpu, 8, 1, "not stated", model, f"{lcd(desc, b, t, d, extra)}; {sizes}",
              LCP, gb, "mpirun -np 8 (data parallel), -z 1", "steps in", v, unit, f"{LCB}/scripts/{script}{LCX}"])

# ---------------------------------------------------------------------------------------------
# MLPerf Training v2.0 (mlcommons/training_results_v2.0), submitters other than NVIDIA
M2 = "8437fbb78349aa3c3054aeccb1d47d2a315a80e7"
M2B = f"https://github.com/mlcommons/training_results_v2.0/blob/{M2}"
DELLIC = "2x ConnectX-6 IB HDR 200Gb/Sec; NVLink 3.0 600GB/s; 4 accelerators per node"
BERTD = ("MLPerf BERT-Large pretraining, phase 2 from the phase-1 checkpoint; max_seq_length=512; --dense_seq_output --unpad --unpad_fmha "
         "--exchange_padding{fused}; LAMB; NGC PyTorch 22.05 (system JSON framework); d_batch_size {mb} (log line {mbl}) x gradient_accumulation_steps {ga} "
         "(log line {gal}); BATCHSIZE={bs}, GRADIENT_STEPS={ga} in the config; {tot} train_samples")
FUSED = " --fused_bias_fc --fused_bias_mha --fused_dropout_add --fused_gemm_gelu"
for n, mb, mbl, ga, gal, gb, bs, tot, line, v, cfg in [
        (1, 32, 48, 2, 49, 256, 64, 2550016, 522, 1495.747994054393, "config_1xXE8545x4A100-SXM4-40GB.sh"),
        (2, 28, 81, 2, 82, 448, 56, 2850176, 567, 1947.6195875644482, "config_2xXE8545x4A100-SXM4-40GB.sh"),
        (4, 14, 149, 2, 151, 448, 28, 2550016, 653, 3158.729216828726, "config_4xXE8545x4A100-SXM4-40GB.sh"),
        (8, 48, 293, 1, 294, 1536, 48, 2850816, 837, 8194.261327240918, "config_8xXE8545x4A100-SXM4-40GB.sh"),
        (16, 48, 544, 1, 547, 3072, 48, 3151872, 1195, 16286.15834721263, "config_16xXE8545x4A100-SXM4-40GB.sh"),
        (32, 24, 1199, 1, 1200, 3072, 24, 3326976, 2045, 22107.98964811015, "config_32xXE8545x4A100-SXM4-40GB.sh")]:
    plat = f"{n}xXE8545x4A100-SXM-40GB"
    rdir = plat if n > 1 else "XE8545x4A100-SXM-40GB"
    R.append([f"mlp20-dell-bert-xe8545-40g-{n}n", f"{plat} (MLPerf Training v2.0 closed, Dell)", "NVIDIA A100-SXM-40GB (GPU TDP:400W)", 4*n, n, DELLIC,
              "BERT-Large", BERTD.format(fused=FUSED, mb=mb, mbl=mbl, ga=ga, gal=gal, bs=bs, tot=tot) + "; 4 GPUs a node (system JSON accelerators_per_node)",
              "fp16 (log Namespace fp16=True; run_and_time.sh --fp16)", gb, f"{4*n} GPUs (torch.distributed, DP)",
              f"training throughput (training_sequences_per_second, summary line {line})", v, "training_sequences_per_second",
              f"{M2B}/Dell/results/{rdir}/bert/result_0.txt ; system {M2B}/Dell/systems/{rdir}.json ; config {M2B}/Dell/benchmarks/bert/implementations/pytorch/{cfg}"])
RND = ("MLPerf ImageNet; MXNet (NGC MXNet 22.05, system JSON framework); DALI; LARS (opt_name lars; OPTIMIZER sgdwfastlars); --input-layout NHWC; "
       "d_batch_size {mb} (log line {mbl}, BATCHSIZE in the config); global_batch_size {gb} (log line {gbl}); 4 GPUs a node (system JSON accelerators_per_node){note}")
for n, mb, mbl, gb, gbl, line, v, cfg, note in [
        (1, 256, 1045, 1024, 1049, 1787, 12107.864003035544, "config_1xXE8545x4A100-SXM4-40GB.sh", ""),
        (4, 204, 3554, 3264, 3581, 4095, 45015.82629660393, "config_4xXE8545x4A100-SXM4-40GB.sh", ""),
        (32, 128, 26558, 16384, 26769, 28647, 311129.9198522586, "config_32xXE8545x4A100-SXM4-40GB.sh",
         "; the config says DGXNNODES=16, the log's submission_platform and global batch (128 x 128) say 32 nodes")]:
    plat = f"{n}xXE8545x4A100-SXM-40GB"
    rdir = plat if n > 1 else "XE8545x4A100-SXM-40GB"
    R.append([f"mlp20-dell-rn50-xe8545-40g-{n}n", f"{plat} (MLPerf Training v2.0 closed, Dell)", "NVIDIA A100-SXM-40GB (GPU TDP:400W)", 4*n, n, DELLIC,
              "ResNet-50 v1.5", RND.format(mb=mb, mbl=mbl, gb=gb, gbl=gbl, note=note),
              "float16 (run_and_time.sh --dtype float16)", gb, "KVSTORE=horovod",
              f"training throughput, epoch 10 (tracked_stats imgs_sec, step 10, line {line})", v, "imgs_sec",
              f"{M2B}/Dell/results/{rdir}/resnet/result_0.txt ; system {M2B}/Dell/systems/{rdir}.json ; config {M2B}/Dell/benchmarks/resnet/implementations/mxnet/{cfg}"])
AZIC = "1x Ethernet 40Gb/Sec, 8x ConnectX-6 IB HDR 200Gb/Sec; NVLINK 3.0, NVSWITCH 2.0 600GB/s"
for n, mb, mbl, gb, line, v in [(1, 56, 122, 448, 614, 2415.825588178426), (8, 48, 824, 3072, 13797, 21168.172668461422)]:
    R.append([f"mlp20-azure-bert-nd96amsr-{n}n", f"ND96amsr_A100_v4_n{n} (MLPerf Training v2.0 closed, Azure)", "NVIDIA A100-SXM4-80GB", 8*n, n, AZIC,
              "BERT-Large", f"MLPerf BERT-Large pretraining, phase 2; max_seq_length=512; dense_seq_output=True, unpad_fmha=True, exchange_padding=True (log Namespace); "
              f"LAMB; PyTorch NVIDIA Release 22.04; d_batch_size {mb} (log line {mbl}) x gradient_accumulation_steps 1; 8 GPUs a node (system JSON accelerators_per_node); "
              "no config file for this run in Azure/benchmarks (the log's submission_platform is a placeholder)",
              "fp16 (log Namespace fp16=True)", gb, f"{8*n} GPUs (torch.distributed, DP)",
              f"training throughput (training_sequences_per_second, summary line {line})", v, "training_sequences_per_second",
              f"{M2B}/Azure/results/ND96amsr_A100_v4_n{n}_pytorch/bert/result_0.txt ; system {M2B}/Azure/systems/ND96amsr_A100_v4_n{n}_pytorch.json"])
HZ = "HazyResearch/results/azurea100_ngc22.04_pytorch/bert/result_220520100725096152634_1.txt"
R.append(["mlp20-hazy-bert-azure-a100-1n", "Azure ND96amsr_A100_v4 (MLPerf Training v2.0 closed, HazyResearch)", "NVIDIA A100-SXM4-80GB", 8, 1, AZIC,
          "BERT-Large", "MLPerf BERT-Large pretraining, phase 2; max_seq_length=512; FlashAttention implementation: --dense_seq_output --last_layer_subset --unpad "
          "--unpad_stream_attn --exchange_padding --fused_bias_fc --fused_bias_mha --fused_bias_fc_loss_head --fused_dense_gelu_dense --fused_dropout_add_ln "
          "(config EXTRA_PARAMS); LAMB; PyTorch NVIDIA Release 22.04; d_batch_size 56 (log line 83) x gradient_accumulation_steps 1 (BATCHSIZE=56, GRADIENT_STEPS=1)",
          "fp16 (log Namespace fp16=True)", 448, "8 GPUs (torch.distributed, DP)",
          "training throughput (training_sequences_per_second, summary line 571)", 2506.005991286259, "training_sequences_per_second",
          f"{M2B}/{HZ} ; system {M2B}/HazyResearch/systems/azurea100_ngc22.04_pytorch.json ; config {M2B}/HazyResearch/benchmarks/bert/implementations/pytorch/config_DGXA100_1x8x56x1_azure.sh"])

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rows.csv")
with open(out, "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(H)
    for r in R:
        assert len(r) == len(H), r[0]
        w.writerow(r)
ids = [r[0] for r in R]
assert len(ids) == len(set(ids))
print(len(R), "rows ->", out)
