# Writes set6/rows.csv. Every value below was read from the file its URL pins (see NOTES.md).
import csv, os
H = "id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source".split(",")

# NeMo Megatron launcher (NVIDIA/NeMo-Megatron-Launcher, now NVIDIA/NeMo-Framework-Launcher), README as of 2022-09-07
NFL = "3579cdb3f2afdeaf23af3e0da6497555566c3f0c"
NFLR = f"https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFL}/README.md"
NFL5 = f"{NFLR}#712-training-performance-results (config: https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFL}/conf/training/gpt3/5b.yaml)"
NFL175 = f"{NFLR}#712-training-performance-results (config: https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFL}/conf/training/gpt3/175b.yaml)"
NFL5C = f"{NFLR}#711-training-accuracy-results (sizes: https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFL}/conf/training/gpt3/5b.yaml)"
NFLT5 = f"{NFLR}#722-training-performance-results (config: https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFL}/conf/training/t5/3b.yaml)"
NFLB = "93673ff405eb6af23c267a80f58447466fa8ec7a"
NFLBERT = f"https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFLB}/README.md#742-training-performance-results (config: https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{NFLB}/launcher_scripts/conf/training/bert/4b.yaml)"

D5 = ("NeMo Megatron 22.08 (README changelog at this commit); conf/training/gpt3/5b.yaml at the same commit: 24 layers; hidden 4096; "
      "ffn_hidden_size 4*hidden; 32 heads; seq 2048 (encoder_seq_length 2048); vocab GPT2BPETokenizer padded to a multiple of 128; "
      "micro_batch_size 2; global_batch_size 2048 (config; the scaling table does not state its GBS); TP 1; PP 1; "
      "activations_checkpoint_granularity full, activations_checkpoint_method block, activations_checkpoint_num_layers 0; "
      "sequence_parallel False; megatron_amp_O2 True; optimizer distributed_fused_adam")
D175 = ("NeMo Megatron 22.08 (README changelog at this commit); conf/training/gpt3/175b.yaml at the same commit: 96 layers; hidden 12288; "
        "ffn_hidden_size 4*hidden; 96 heads; seq 2048 (encoder_seq_length 2048); vocab GPT2BPETokenizer padded to a multiple of 128; "
        "micro_batch_size 2; global_batch_size 2048 (config; the scaling table does not state its GBS); "
        "activations_checkpoint_granularity selective (selective activation recompute); sequence_parallel True (sequence parallel); "
        "no virtual pipeline set; megatron_amp_O2 True; optimizer distributed_fused_adam")
SYS = "NVIDIA DGX SuperPOD ({n} x 8 x A100 80GB)"
IC = "DGX SuperPOD, NVIDIA InfiniBand (README overview; fabric generation not stated)"
R = []
for n, v in [(1, 40345), (4, 161754), (16, 659481), (32, 1159288)]:
    R.append([f"nfl2208-gpt3-5b-{n}n", SYS.format(n=n), "A100-SXM4-80GB", 8*n, n, IC, "5B GPT-3", D5, "bf16", 2048,
              f"TP=1; PP=1; DP={8*n} (derived)", "Tokens per Second", v, "Tokens per Second", NFL5])
for n, v in [(8, 7500), (32, 29537), (64, 58211), (128, 109684)]:
    R.append([f"nfl2208-gpt3-175b-{n}n", SYS.format(n=n), "A100-SXM4-80GB", 8*n, n, IC, "175B GPT-3", D175, "bf16", 2048,
              f"TP=8; PP=8; DP={n//8} (derived)", "Tokens per Second", v, "Tokens per Second", NFL175])
R.append(["nfl2208-gpt3-5b-160g-conv", "NVIDIA DGX SuperPOD (160 GPUs)", "A100-SXM4-80GB", 160, 20, IC, "5B GPT-3",
          "converged 5B GPT-3 run: GBS 1440; Seq Length 2048; #Tokens 300B; Loss 1.685; Time to Train 4.8 days (same table); "
          "sizes from conf/training/gpt3/5b.yaml: 24 layers; hidden 4096; 32 heads; seq 2048; vocab GPT2BPETokenizer; "
          "the run's TP/PP and micro-batch are not stated (the config 5b.yaml says TP 1, PP 1, micro_batch_size 2 for 16 nodes and GBS 2048)",
          "bf16", 1440, "not stated", "Throughput (Tokens/sec)", 726384, "Tokens/sec", NFL5C])
DT5 = ("NeMo Megatron 22.08; conf/training/t5/3b.yaml at the same commit: encoder 24 layers and decoder 24 layers; hidden 2048; "
       "ffn_hidden_size 5120; 32 heads; kv_channels 64; seq_length 512 (encoder), seq_length_dec 128; learned_absolute position embeddings; "
       "micro_batch_size 24; global_batch_size 1920 (config; the scaling table does not state its GBS); TP 2; PP 1; "
       "activations_checkpoint_method null; megatron_amp_O2 True")
for n, v in [(1, 110769), (20, 1626353)]:
    R.append([f"nfl2208-t5-3b-{n}n", SYS.format(n=n), "A100-SXM4-80GB", 8*n, n, IC, "3B T5", DT5, "bf16", 1920,
              f"TP=2; PP=1; DP={4*n} (derived)", "Tokens per Second", v, "Tokens per Second", NFLT5])
DB = ("NeMo Megatron 23.01 (newest README changelog entry at this commit; the chart file is named 4B_bert_throughput_2211); launcher_scripts/conf/training/bert/4b.yaml at the same commit: "
      "48 layers; hidden 2560; ffn_hidden_size 4*hidden; 32 heads; seq 512 (encoder_seq_length 512); bert_binary_head False; "
      "micro_batch_size 8; global_batch_size 2048 (config; the scaling table does not state its GBS); TP 1; PP 1; "
      "activations_checkpoint_granularity selective, activations_checkpoint_num_layers 0; sequence_parallel False; megatron_amp_O2 True; "
      "section header says 20 x 8 x A100 80GB, config num_nodes 16")
for n, v in [(1, 57287), (16, 728178)]:
    R.append([f"nfl2302-bert-4b-{n}n", SYS.format(n=n), "A100-SXM4-80GB", 8*n, n, IC, "4B BERT", DB, "bf16", 2048,
              f"TP=1; PP=1; DP={8*n} (derived)", "Tokens per Second", v, "Tokens per Second", NFLBERT])

# InternEvo training performance doc
IE = "34fc28d760282c11a2aba552d5b21ffefed3e188"
IEC = f"https://github.com/InternLM/InternEvo/blob/{IE}/configs/7B_sft.py"
IET = f"https://github.com/InternLM/InternEvo/blob/{IE}/doc/en/train_performance.md#throughput-measurement (config: {IEC})"
IEF = f"https://github.com/InternLM/InternEvo/blob/{IE}/doc/en/train_performance.md#flops-testing (config: {IEC})"
IESZ = ("7B model, configs/7B_sft.py: NUM_LAYER 32; HIDDEN_SIZE 4096; NUM_ATTENTION_HEAD 32; MLP_RATIO 8/3; VOCAB_SIZE 103168; "
        "use_flash_attn True; dtype torch.bfloat16")
IEIC = "Inter-machine bandwidth 4 * 100Gb RoCE; 8 GPUs a node (zero1=8 is 'within 8 GPUs in a single node')"
def ies(g): return f"{g} GPUs (nvidia_a100-sxm4-80gb, 2TB memory, 128 core Intel Xeon CPU)"
for g, tp, z, mb, v in [(8, 1, 8, 2, 4078), (64, 1, 8, 2, 3944), (1024, 1, 8, 2, 3625), (1024, 1, -1, 2, 2271),
                        (8, 2, 4, 4, 3761), (1024, 2, -1, 4, 2785)]:
    R.append([f"internevo-7b-{g}g-tp{tp}-zero1{'m1' if z < 0 else z}", ies(g), "nvidia_a100-sxm4-80gb", g, g//8, IEIC, "7B model",
              f"{IESZ}; Throughput Measurement table: pack_sample_into_one=False; checkpoint=False; seq_len 2048; micro_num 4; "
              f"micro_bsz {mb} (packed_length = micro_bsz * SEQ_LEN); zero1={z}; global batch = {g//tp} DP x {mb} x 4 = {g//tp*mb*4} "
              f"sequences of 2048 tokens (derived)",
              "bf16", g//tp*mb*4, f"tp={tp}, zero1={z}", "TGS", v, "Tokens/GPU/Second", IET])
for g, ck, mb, mn, gb, v, tf in [(8, "TRUE", 8, 1, "0.125M", 3314, 193), (1024, "TRUE", 2, 1, "4M", 2341, 136),
                                 (8, "FALSE", 2, 4, "0.125M", 4103, 183), (1024, "FALSE", 2, 1, "4M", 2346, 105)]:
    R.append([f"internevo-7b-{g}g-pack-ckpt{ck.lower()}-mb{mb}x{mn}", ies(g), "nvidia_a100-sxm4-80gb", g, g//8, IEIC, "7B model",
              f"{IESZ}; FLOPS Testing table: TP 1; Zero1 8; Pack Sample Into One TRUE; Activation Ckpt {ck}; Seq Len 2048; "
              f"Micro Bsz {mb}; Micro Num {mn}; Global Bsz {gb} (tokens); table also gives TFLOPS {tf}; global batch = {g} x {mb} x {mn} = {g*mb*mn} "
              f"sequences of 2048 tokens (derived)",
              "bf16", g*mb*mn, "TP=1, Zero1=8", "TGS", v, "Tokens per GPU per Second", IEF])

# Colossal-AI README benchmark (2025-09-26)
CA = "https://github.com/hpcaitech/ColossalAI/blob/e5fdefa6cfc89341fe52628e51327703c62b0c66/README.md#colossal-ai-benchmark"
for i, (gpu, g, ms, par, bdp, v, tf, mem, note) in enumerate([
        ("H200", 8, "7B", "zero2(dp8)", 36, 17.13, 534.18, 119040.02, ""),
        ("H200", 16, "70B", "zero2", 48, 3.27, 469.1, 150032.23, ""),
        ("B200", 8, "7B", "zero1(dp2)+tp2+pp4", 128, 25.83, 805.69, 100119.77, "; dp2 x tp2 x pp4 is 16 GPUs, the table says 8"),
        ("B200", 16, "70B", "zero1(dp2)+tp2+pp4", 128, 5.66, 811.79, 100072.02,
         "; the table's GPU column says H200 for this row, the paragraph below it says the 70B model on 16 cards ran on the B200 with over 70% higher throughput (5.66/3.27 = 1.73): read as B200"),
        ]):
    dp = 8 if par == "zero2(dp8)" else (16 if par == "zero2" else 2)
    # Added 2026-12-08 (derived, not stated in the table): Colossal-AI's performance_evaluator.py (line 164 at the
    # same commit) counts batch per DP x seqlen x parameters x 2 x (3 + int(enable_grad_checkpoint)) a step and divides
    # by the step time and TP x PP; the row's TFLOPS/GPU and samp/s give that factor. Llama 2's parameter counts.
    mp = 8 if "tp2+pp4" in par else 1
    params = 6738415616 if ms == "7B" else 68976648192
    factor = tf * 1e12 * (bdp * dp / v) * mp / (bdp * 4096 * params * 2)
    if abs(factor - 4) < 0.6:
        note += (f"; grad checkpointing on (derived: TFLOPS/GPU x step time (global batch / samp/s) x TP*PP / (batch per DP x 4096 x "
                 f"{params:,} parameters x 2) = {factor:.2f}, where examples/language/performance_evaluator.py counts 3 + int(enable_grad_checkpoint): "
                 f"https://github.com/hpcaitech/ColossalAI/blob/e5fdefa6cfc89341fe52628e51327703c62b0c66/examples/language/performance_evaluator.py#L164)")
    R.append([f"colossalai-{ms.lower()}-{gpu.lower()}-{g}g-{'zero2' if 'zero2' in par else 'hybrid'}", f"{g} x {gpu}", gpu, g, g//8,
              "not stated", f"Llama-like {ms}",
              f"Colossal-AI benchmark on Llama-like models; Model Size {ms}; Seqlen 4096; Batch Size per DP {bdp}; Parallelism {par}; "
              f"TFLOPS/GPU {tf}; Peak Mem(MiB) {mem}; global batch = {bdp} x DP {dp} (DP derived from the Parallelism column){note}",
              "not stated", bdp*dp, par, "Throughput", v, "samp/s", CA])

# Megatron-LLaMA README
ML = "e3d671a53d75c67c832a251f8a914c89be581d22"
MLS = f"https://github.com/alibaba/Megatron-LLaMA/blob/{ML}/README.md (example script: https://github.com/alibaba/Megatron-LLaMA/blob/{ML}/examples/LLaMA/LLaMA_13_slurm.sh)"
for name, v, par, det in [
        ("DeepSpeed (HF)", 146, "DeepSpeed (ZeRO stage not stated)", "DeepSpeed (HF) implementation with FlashAttention enabled; Training cost 49.7 hours ($5482) for 10 billion tokens"),
        ("Megatron-LLaMA", 180, "not stated",
         "Megatron-LLaMA implementation; Training cost 40.3 hours ($4445) for 10 billion tokens; the README does not tie a configuration to this figure; its example script examples/LLaMA/LLaMA_13_slurm.sh sets TP_SIZE=2, PP_SIZE=1, --sequence-parallel, --overlapped-distributed-optimizer, MICRO_BATCH_SIZE 4, 40 layers, hidden 5120, 40 heads, seq-length 2048, ffn-hidden-size 13824, --swiglu")]:
    R.append([f"megatron-llama-13b-32g-{'deepspeed-hf' if 'Deep' in name else 'megatron-llama'}", "four 8xA100-80GB devices", "A100-SXM4-80GB", 32, 4,
              "not stated for this table (the scalability table's runs: 4x200Gbps RDMA inter-bandwidth)", "LLaMA-13b",
              f"{det}; The global batch size is set to 2048 via gradient accumulation (GA); sequence length not stated in the README",
              "not stated", 2048, par, "Training Model TFLOPS", v, "TFLOPS", MLS])

# torchtune README
TT = "1814feb17a9038e1a8053ce93111bd26774a8db6"
TTM = f"https://github.com/pytorch/torchtune/blob/{TT}/README.md#memory-and-training-speed"
TTF = f"https://github.com/pytorch/torchtune/blob/{TT}/README.md#optimization-flags"
def ttc(p): return f" (config: https://github.com/pytorch/torchtune/blob/{TT}/recipes/configs/{p})"
TTN = "all numbers for batch size 2 (without gradient accumulation), a dataset packed to sequence length 2048, and torch compile enabled; Tokens/sec measured over one full training epoch"
R.append(["torchtune-llama31-8b-full-1x4090", "1x 4090", "4090", 1, 1, "", "Llama 3.1 8B",
          f"Full finetune; {TTN}; Peak Memory per GPU 18.9 GiB; config llama3_1/8B_full_single_device.yaml: PagedAdamW8bit; optimizer_in_bwd True; "
          "enable_activation_checkpointing True; CEWithChunkedOutputLoss; dtype bf16", "bf16", 2, "single device", "Tokens/sec", 1650, "Tokens/sec",
          TTM + ttc("llama3_1/8B_full_single_device.yaml")])
R.append(["torchtune-llama31-8b-full-1xa6000", "1x A6000", "A6000", 1, 1, "", "Llama 3.1 8B",
          f"Full finetune; {TTN}; Peak Memory per GPU 37.4 GiB; config llama3_1/8B_full_single_device.yaml: PagedAdamW8bit; optimizer_in_bwd True; "
          "enable_activation_checkpointing True; CEWithChunkedOutputLoss; dtype bf16", "bf16", 2, "single device", "Tokens/sec", 2579, "Tokens/sec",
          TTM + ttc("llama3_1/8B_full_single_device.yaml")])
R.append(["torchtune-llama31-70b-full-8xa100", "8x A100", "A100", 8, 1, "", "Llama 3.1 70B",
          f"Full finetune; {TTN}; Peak Memory per GPU 13.9 GiB; Uses CPU offload with fused optimizer; config llama3_1/70B_full.yaml: "
          "fsdp_cpu_offload True; torch.optim.AdamW fused True; enable_activation_checkpointing True; custom_sharded_layers tok_embeddings, output; "
          "CEWithChunkedOutputLoss; dtype bf16; batch size 2 per device, global batch 16 (derived)", "bf16", 16, "FSDP (full_finetune_distributed)",
          "Tokens/sec", 1568, "Tokens/sec", TTM + ttc("llama3_1/70B_full.yaml")])
R.append(["torchtune-llama31-70b-lora-8xa100", "8x A100", "A100", 8, 1, "", "Llama 3.1 70B",
          f"LoRA; {TTN}; Peak Memory per GPU 27.6 GiB; config llama3_1/70B_lora.yaml: lora_rank 16; lora_alpha 32; lora_attn_modules q_proj, v_proj, output_proj; "
          "apply_lora_to_mlp True; enable_activation_checkpointing True; dtype bf16; batch size 2 per device, global batch 16 (derived)", "bf16", 16,
          "FSDP (lora_finetune_distributed)", "Tokens/sec", 3497, "Tokens/sec", TTM + ttc("llama3_1/70B_lora.yaml")])
TT3 = ("Optimization flags table; Baseline: Model Llama 3.2 3B; Batch size 2; Max seq len 4096; Precision bf16; Hardware A100; Recipe full_finetune_single_device; "
       "each technique added on top of the previous one; sizes from torchtune/models/llama3_2/_model_builders.py: 28 layers; hidden 3072 (embed_dim); 24 heads; "
       "8 kv heads; intermediate_dim 8192; vocab 128256; output tied to the embeddings (TiedLinear)")
for tech, mem, v, state in [("+ Packed Dataset", 60.0, 7075, "packed dataset; no compile; no chunked cross entropy; no activation checkpointing"),
                            ("+ Compile", 51.0, 8998, "packed dataset; torch.compile; no chunked cross entropy; no activation checkpointing"),
                            ("+ Chunked Cross Entropy", 42.9, 9174, "packed dataset; torch.compile; chunked cross entropy; no activation checkpointing"),
                            ("+ Activation Checkpointing", 24.9, 7210, "packed dataset; torch.compile; chunked cross entropy; activation checkpointing")]:
    R.append([f"torchtune-llama32-3b-a100-{tech[2:].lower().replace(' ', '-')}", "1x A100", "A100", 1, 1, "", "Llama 3.2 3B",
              f"{TT3}; Technique '{tech}' (cumulative: {state}); Peak Memory Active {mem} GiB", "bf16", 2, "single device",
              "Tokens Per Second", v, "Tokens Per Second", TTF])

# TinyLlama README
TL = "8148930f6b5f4c648876045320499aa778454336"
R.append(["tinyllama-1.1b-a100-40g", "16 A100-40G GPUs (two nodes of 8 per PRETRAIN.md)", "A100-40G", 16, 2, "not stated", "TinyLlama-1.1B",
          "Layers 22; Heads 32; Query Groups 4; Embedding Size 2048; Intermediate Size (Swiglu) 5632; Sequence Length 2048; vocab 32000 (lit_gpt/config.py tiny_LLaMA_1b); "
          "Batch Size 2 million tokens (2048 * 1024); per-gpu batch size of 16k tokens (micro_batch_size 8 in pretrain/tinyllama.py); "
          "FSDP (FSDPStrategy, activation_checkpointing_policy None, cpu_offload False); flash attention 2; fused layernorm; fused swiglu; "
          "fused cross entropy loss; fused rotary positional embedding; without activation checkpointing; 56% model flops utilization; "
          "precision not stated in the README (script: get_default_supported_precision)",
          "not stated", 1024, "FSDP", "throughput", 24000, "tokens per second per A100-40G GPU",
          f"https://github.com/jzhang38/TinyLlama/blob/{TL}/README.md#blazingly-fast (script: https://github.com/jzhang38/TinyLlama/blob/{TL}/pretrain/tinyllama.py; sizes: https://github.com/jzhang38/TinyLlama/blob/{TL}/lit_gpt/config.py)"])

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
