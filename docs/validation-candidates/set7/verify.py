# Checks rows.csv against the mirrored repositories: every cited file exists at its pinned commit, the row's value
# appears in the first cited file, and every "line N" the metric/model_detail names holds the value it is cited for.
import csv, re, subprocess, sys, os
MIR = {"microsoft/Megatron-DeepSpeed": "/work/.mirror/microsoft+Megatron-DeepSpeed/repo",
       "karpathy/llm.c": "/work/.mirror/karpathy+llm.c/repo",
       "mlcommons/training_results_v2.0": "/work/.mirror/mlcommons+training_results_v2.0/repo"}
def show(repo, commit, path):
    r = subprocess.run(["git", "-C", MIR[repo], "show", f"{commit}:{path}"], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None

# the exact phrase of the source that carries each non-MLPerf value
CTX = {
 "mds-longseq-new-2k-32g": "| 2k              | 25 (TP=32)                       | 68 (TP size=32)",
 "mds-longseq-old-2k-32g": "| 2k              | 25 (TP=32)",
 "mds-longseq-old-4k-32g": "| 4k              | 28 (TP=32)",
 "mds-longseq-new-8k-32g": "| 8k              | OoM                              | 86 (TP size=32)",
 "mds-longseq-new-32k-32g": "| 32k             | OoM                              | 100 (TP size=32)",
 "mds-longseq-new-128k-32g": "| 128k            | OoM                              | 119 (TP size=32)",
 "mds-longseq-new-256k-32g": "| 256k            | OoM                              | 94 (TP size=32)",
 "mds-rebase-gpt3-13b-128g-before": "| Before sync, GPT-3 13B, 3D parallelism | 50 | 5.73 |",
 "mds-rebase-gpt3-13b-128g-after": "| After sync, GPT-3 13B, 3D parallelism | 55.6 | 5.71 |",
 "mds-rebase-gpt3-125m-8g-nofa": "increased training throughput (TFLOPs per GPU) from 25 to 32",
 "mds-rebase-gpt3-125m-8g-fa1": "increased training throughput (TFLOPs per GPU) from 25 to 32",
 "mds-rebase-gpt3-2.7b-8g-fa1": "FlashAttention-2 improved the training throughput 121 TFLOPs to 132 TFLOPs",
 "mds-rebase-gpt3-2.7b-8g-fa2": "FlashAttention-2 improved the training throughput 121 TFLOPs to 132 TFLOPs",
 "mds-rebase-gpt3-1.3b-16g-olderckpt": "higher throughput (older 23.11 TFLOPs newer 17.26 TFLOPs)",
 "mds-rebase-gpt3-1.3b-16g-newerckpt": "higher throughput (older 23.11 TFLOPs newer 17.26 TFLOPs)",
 "mds-bert-1.3b-64g": "a throughput up to 145 TFLOPs per GPU when pre-training a 1.3B BERT model (with ZeRO stage-1, without model parallelism, with 64 NVIDIA A100 GPUs, with batch size 4096 (64 per GPU), with activation checkpointing)",
 "llmc-gpt2-124m-8xa100": "# on 8X A100 80GB SXM ($14/hr) steps in ~300ms/iter",
 "llmc-gpt2-350m-8xa100": "# on 8X A100 80GB SXM ($14/hr) steps in ~820ms/iter",
 "llmc-gpt2-774m-8xa100": "# on 8X A100 80GB SXM ($14/hr) steps in ~1.7s/iter",
 "llmc-gpt3-125m-8xa100": "# on 8X A100 80GB SXM ($14/hr) steps in ~150ms/iter",
 "llmc-gpt2-1558m-8xh100": "# on 8X H100 80GB SXM ($28/hr) steps in 2.80s/iter",
}
# script flags each llm.c row quotes
FLAGS = {"llmc-gpt2-124m-8xa100": ["-b 64 -t 1024", "-d 524288", "-r 0", "-z 1", '-e "d12"'],
         "llmc-gpt2-350m-8xa100": ["-b 64 -t 1024", "-d 524288", "-r 0", "-z 1", '-e "d24"'],
         "llmc-gpt2-774m-8xa100": ["-b 32 -t 1024", "-d 524288", "-r 0", "-z 1", '-e "d36"'],
         "llmc-gpt3-125m-8xa100": ["-b 32 -t 2048", "-d 524288", "-r 0", "-z 1", '-e "gpt3:c768"'],
         "llmc-gpt2-1558m-8xh100": ["-b 16 -t 1024", "-d 1048576", "-r 0", "-z 1", '-e "d48"', "-ge 1"]}
bad = 0
rows = list(csv.DictReader(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rows.csv"))))
for r in rows:
    urls = re.findall(r"https://github\.com/([^/]+/[^/]+)/blob/([0-9a-f]{40})/([^ #()]+)", r["source"])
    texts = []
    for repo, c, p in urls:
        t = show(repo, c, p)
        if t is None:
            print("MISSING", r["id"], repo, p); bad += 1
        texts.append(t or "")
    v = r["value"]
    vs = {v, v.rstrip("0").rstrip(".") if "." in v else v}
    if not any(x in texts[0] for x in vs):
        print("VALUE NOT IN FILE", r["id"], v); bad += 1
    if r["id"] in CTX and CTX[r["id"]] not in texts[0]:
        print("CONTEXT NOT IN FILE", r["id"]); bad += 1
    if not r["id"].startswith("mlp20") and r["id"] not in CTX:
        print("NO CONTEXT CHECK", r["id"]); bad += 1
    for fl in FLAGS.get(r["id"], []):
        if fl not in texts[0]:
            print("FLAG NOT IN SCRIPT", r["id"], fl); bad += 1
    # line checks for MLPerf logs
    lines = texts[0].split("\n")
    for m in re.finditer(r"line (\d+)", r["metric"]):
        ln = int(m.group(1))
        if v not in lines[ln-1]:
            print("LINE MISMATCH", r["id"], ln, lines[ln-1][:120]); bad += 1
    for m in re.finditer(r"(d_batch_size|global_batch_size) (\d+) \(log line (\d+)", r["model_detail"]):
        key, val, ln = m.group(1), m.group(2), int(m.group(3))
        if f'"key": "{key}", "value": {val},' not in lines[ln-1]:
            print("DETAIL LINE MISMATCH", r["id"], key, val, ln, lines[ln-1][:160]); bad += 1
    for m in re.finditer(r"gradient_accumulation_steps (\d+) \(log line (\d+)", r["model_detail"]):
        val, ln = m.group(1), int(m.group(2))
        if f'"key": "gradient_accumulation_steps", "value": {val},' not in lines[ln-1]:
            print("GA LINE MISMATCH", r["id"], ln); bad += 1
    # MLPerf: global batch in the log
    if "mlcommons" in r["source"] and f'"key": "global_batch_size", "value": {r["global_batch"]},' not in texts[0]:
        print("GBS NOT IN LOG", r["id"], r["global_batch"]); bad += 1
print(len(rows), "rows checked,", bad, "problems")
sys.exit(1 if bad else 0)
