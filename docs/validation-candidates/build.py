import csv
H="id,system,gpu,gpus,nodes,interconnect,model,model_detail,precision,global_batch,parallelism,metric,value,unit,source".split(",")
DLE="https://github.com/NVIDIA/DeepLearningExamples/blob/729963dd47e7c8bd462ad10bfac7a7b0b604e6dd/"
rows=[]
def R(*a):
    assert len(a)==15,(a[0],len(a)); rows.append(a)
NS="not stated in source"
# --- TF1 ResNet-50
tfrn=DLE+"TensorFlow/Classification/ConvNets/resnet50v1.5/README.md"
d_tf="224px ImageNet TFRecords (training_perf.sh: --data_dir=/data/tfrecords; 200 warm-up + 500 iters); TensorFlow 20.06-tf1-py3; XLA on; README: averaged over an entire training epoch"
R("dle-tf-rn50-a100-1g-tf32","DGX A100 40GB (1 GPU used)","A100-SXM4-40GB",1,1,"single GPU","ResNet-50 v1.5",d_tf,"TF32 (+XLA)",256,"DP=1","training throughput",909,"images/s",tfrn+"#training-performance-nvidia-dgx-a100-8x-a100-40gb")
R("dle-tf-rn50-a100-8g-tf32","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_tf,"TF32 (+XLA)",2048,"DP=8","training throughput",7000,"images/s",tfrn+"#training-performance-nvidia-dgx-a100-8x-a100-40gb")
R("dle-tf-rn50-a100-1g-amp","DGX A100 40GB (1 GPU used)","A100-SXM4-40GB",1,1,"single GPU","ResNet-50 v1.5",d_tf+"; --amp --static_loss_scale 128","AMP (FP16 mixed, +XLA)",256,"DP=1","training throughput",2375,"images/s",tfrn+"#training-performance-nvidia-dgx-a100-8x-a100-40gb")
R("dle-tf-rn50-a100-8g-amp","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_tf+"; --amp --static_loss_scale 128","AMP (FP16 mixed, +XLA)",2048,"DP=8","training throughput",17400,"images/s",tfrn+"#training-performance-nvidia-dgx-a100-8x-a100-40gb")
R("dle-tf-rn50-v100-1g-fp32","DGX-1 16GB (1 GPU used)","V100-SXM2-16GB",1,1,"single GPU","ResNet-50 v1.5",d_tf,"FP32 (+XLA)",128,"DP=1","training throughput",412,"images/s",tfrn+"#training-performance-nvidia-dgx-1-8x-v100-16g")
R("dle-tf-rn50-v100-8g-fp32","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","ResNet-50 v1.5",d_tf,"FP32 (+XLA)",1024,"DP=8","training throughput",3170,"images/s",tfrn+"#training-performance-nvidia-dgx-1-8x-v100-16g")
R("dle-tf-rn50-v100-1g-amp","DGX-1 16GB (1 GPU used)","V100-SXM2-16GB",1,1,"single GPU","ResNet-50 v1.5",d_tf+"; --amp --static_loss_scale 128","AMP (FP16 mixed, +XLA)",256,"DP=1","training throughput",1270,"images/s",tfrn+"#training-performance-nvidia-dgx-1-8x-v100-16g")
R("dle-tf-rn50-v100-8g-amp","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","ResNet-50 v1.5",d_tf+"; --amp --static_loss_scale 128","AMP (FP16 mixed, +XLA)",2048,"DP=8","training throughput",9510,"images/s",tfrn+"#training-performance-nvidia-dgx-1-8x-v100-16g")
R("dle-tf-rn50-dgx2-16g-amp","DGX-2 (16x V100 32GB; one node)","V100-SXM3-32GB",16,1,"DGX-2 NVSwitch (not stated in source; SXM3 variant is the DGX-2 part, not stated in README)","ResNet-50 v1.5",d_tf+"; --amp --static_loss_scale 128","AMP (FP16 mixed, +XLA)",4096,"DP=16","training throughput",17250,"images/s",tfrn+"#training-performance-nvidia-dgx-2-16x-v100-32g")
# --- MXNet ResNet-50
mxrn=DLE+"MxNet/Classification/RN50v1.5/README.md"
d_mxa="224px ImageNet; mxnet-22.10-py3; benchmark.py -i 500 -e 3 -w 1 --num-examples 32000 --mode train; Total IPS (data + compute); runner default --data-backend dali-gpu (not stated in table)"
d_mxv=d_mxa.replace("mxnet-22.10-py3","mxnet-20.12-py3")
A100T="#training-performance-nvidia-dgx-a100-8x-a100-80gb"; V100T="#training-performance-nvidia-dgx-1-8x-v100-16gb"
R("dle-mx-rn50-a100-1g-amp","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","ResNet-50 v1.5",d_mxa+"; --dtype float16","AMP (FP16 mixed)",512,"DP=1","training throughput",3410.52,"images/s",mxrn+A100T)
R("dle-mx-rn50-a100-8g-amp","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_mxa+"; --dtype float16","AMP (FP16 mixed)",4096,"DP=8","training throughput",26673.72,"images/s",mxrn+A100T)
R("dle-mx-rn50-a100-1g-tf32","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","ResNet-50 v1.5",d_mxa+"; --dtype float32 (TF32 on A100)","TF32",512,"DP=1","training throughput",1055.78,"images/s",mxrn+A100T)
R("dle-mx-rn50-a100-8g-tf32","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_mxa+"; --dtype float32 (TF32 on A100)","TF32",4096,"DP=8","training throughput",8247.44,"images/s",mxrn+A100T)
R("dle-mx-rn50-v100-1g-fp32","DGX-1 16GB (1 GPU used)","V100-SXM2-16GB",1,1,"single GPU","ResNet-50 v1.5",d_mxv+"; --dtype float32","FP32",96,"DP=1","training throughput",384,"images/s",mxrn+V100T)
R("dle-mx-rn50-v100-8g-fp32","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","ResNet-50 v1.5",d_mxv+"; --dtype float32","FP32",768,"DP=8","training throughput",3005,"images/s",mxrn+V100T)
R("dle-mx-rn50-v100-1g-amp","DGX-1 16GB (1 GPU used)","V100-SXM2-16GB",1,1,"single GPU","ResNet-50 v1.5",d_mxv+"; --dtype float16","AMP (FP16 mixed)",192,"DP=1","training throughput",1376,"images/s",mxrn+V100T)
R("dle-mx-rn50-v100-8g-amp","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","ResNet-50 v1.5",d_mxv+"; --dtype float16","AMP (FP16 mixed)",1536,"DP=8","training throughput",10723,"images/s",mxrn+V100T)
# --- PaddlePaddle ResNet-50
pdrn=DLE+"PaddlePaddle/Classification/RN50v1.5/README.md#training-performance-nvidia-dgx-a100-8x-a100-80gb (table last changed in fc9c09b0; batch = README's --batch-size default 256/GPU, not stated in the table; container not stated, Dockerfile @fc9c09b0: paddlepaddle:23.06-py3)"
d_pd="224px ImageNet; DALI (the only loader); batch/GPU not stated in table (train.py default 256)"
R("dle-pd-rn50-a100-1g-tf32","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","ResNet-50 v1.5",d_pd,"TF32",256,"DP=1","training throughput",1024,"images/s",pdrn)
R("dle-pd-rn50-a100-8g-tf32","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_pd,"TF32",2048,"DP=8","training throughput",8013,"images/s",pdrn)
R("dle-pd-rn50-a100-1g-amp","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","ResNet-50 v1.5",d_pd+"; NHWC; AMP script adds --fuse-resunit (cuDNN v8 ResUnit fusion)","AMP (FP16 mixed)",256,"DP=1","training throughput",2897,"images/s",pdrn)
R("dle-pd-rn50-a100-8g-amp","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ResNet-50 v1.5",d_pd+"; NHWC; AMP script adds --fuse-resunit (cuDNN v8 ResUnit fusion)","AMP (FP16 mixed)",2048,"DP=8","training throughput",23874,"images/s",pdrn)
# --- TF1 BERT-Large
tfb=DLE+"TensorFlow/LanguageModeling/BERT/README.md"
TA1="#pre-training-training-performance-single-node-on-dgx-a100-40gb"; TAM="#pre-training-training-performance-multi-node-on-dgx-a100-40gb"; TV1="#pre-training-training-performance-single-node-on-dgx-1-16gb"
dtb="LAMB pretraining, Wikipedia+BookCorpus TFRecords (padded to max length); TensorFlow 20.06-py3; run_pretraining_lamb.sh defaults: XLA on, bert_model large; steady-state throughput"
R("dle-tfbert-a100-1g-s128-amp","DGX A100 40GB (1 GPU used)","A100-SXM4-40GB",1,1,"single GPU","BERT-Large pretraining","seq 128; micro-batch 64/GPU x 1024 accumulation; "+dtb,"AMP (FP16 mixed, +XLA)",65536,"DP=1; grad-accum 1024","training throughput",356.845,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-8g-s128-amp","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 128; micro-batch 64/GPU x 128 accumulation; "+dtb,"AMP (FP16 mixed, +XLA)",65536,"DP=8; grad-accum 128","training throughput",2871.89,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-8g-s128-tf32","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 128; micro-batch 64/GPU x 128 accumulation; "+dtb,"TF32 (+XLA)",65536,"DP=8; grad-accum 128","training throughput",1889.71,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-1g-s512-amp","DGX A100 40GB (1 GPU used)","A100-SXM4-40GB",1,1,"single GPU","BERT-Large pretraining","seq 512; micro-batch 16/GPU x 2048 accumulation; "+dtb,"AMP (FP16 mixed, +XLA)",32768,"DP=1; grad-accum 2048","training throughput",70.856,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-8g-s512-amp","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 512; micro-batch 16/GPU x 256 accumulation; "+dtb,"AMP (FP16 mixed, +XLA)",32768,"DP=8; grad-accum 256","training throughput",572.112,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-8g-s512-tf32","DGX A100 40GB","A100-SXM4-40GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 512; micro-batch 8/GPU x 512 accumulation; "+dtb,"TF32 (+XLA)",32768,"DP=8; grad-accum 512","training throughput",316.51,"sequences/s",tfb+TA1)
R("dle-tfbert-a100-256g-s128-amp","32x DGX A100 40GB","A100-SXM4-40GB",256,32,"DGX A100 nodes; inter-node fabric not stated in source","BERT-Large pretraining","seq 128; micro-batch 64/GPU x 4 accumulation (multi-node table); "+dtb,"AMP (FP16 mixed, +XLA)",65536,"DP=256; grad-accum 4","training throughput",77479.87,"sequences/s",tfb+TAM)
R("dle-tfbert-a100-256g-s128-tf32","32x DGX A100 40GB","A100-SXM4-40GB",256,32,"DGX A100 nodes; inter-node fabric not stated in source","BERT-Large pretraining","seq 128; micro-batch 64/GPU x 4 accumulation (multi-node table); "+dtb,"TF32 (+XLA)",65536,"DP=256; grad-accum 4","training throughput",53585.82,"sequences/s",tfb+TAM)
R("dle-tfbert-v100-8g-s128-amp","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","BERT-Large pretraining","seq 128; micro-batch 16/GPU x 512 accumulation; "+dtb,"AMP (FP16 mixed, +XLA)",65536,"DP=8; grad-accum 512","training throughput",1001.39,"sequences/s",tfb+TV1)
R("dle-tfbert-v100-8g-s128-fp32","DGX-1 16GB","V100-SXM2-16GB",8,1,"DGX-1 NVLink (topology not stated in source)","BERT-Large pretraining","seq 128; micro-batch 8/GPU x 1024 accumulation; "+dtb,"FP32 (+XLA)",65536,"DP=8; grad-accum 1024","training throughput",285.79,"sequences/s",tfb+TV1)
# --- TF2 BERT-Large
tf2=DLE+"TensorFlow2/LanguageModeling/BERT/README.md"
T2S="#pre-training-training-performance-single-node-on-nvidia-dgx-a100-8x-a100-80gb"; T2M="#pre-training-training-performance-multi-node-on-nvidia-dgx-a100-8x-a100-80gb"
dt2="LAMB pretraining; TensorFlow 21.02-py3; model not named in table (run_pretraining_lamb.sh default bert_model large; README: trains the BERT-Large model); XLA default on; steady-state throughput"
R("dle-tf2bert-a100-1g-s128-amp","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","BERT-Large pretraining","seq 128; micro-batch 312/GPU x 256 accumulation; "+dt2,"AMP (FP16 mixed, +XLA)",79872,"DP=1; grad-accum 256","training throughput",485.59,"sequences/s",tf2+T2S)
R("dle-tf2bert-a100-8g-s128-amp","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 128; micro-batch 312/GPU x 32 accumulation; "+dt2,"AMP (FP16 mixed, +XLA)",79872,"DP=8; grad-accum 32","training throughput",3799.24,"sequences/s",tf2+T2S)
R("dle-tf2bert-a100-8g-s128-tf32","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 128; micro-batch 176/GPU x 64 accumulation; "+dt2,"TF32 (+XLA)",90112,"DP=8; grad-accum 64","training throughput",1944.77,"sequences/s",tf2+T2S)
R("dle-tf2bert-a100-8g-s512-amp","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 512; micro-batch 40/GPU x 96 accumulation; "+dt2,"AMP (FP16 mixed, +XLA)",30720,"DP=8; grad-accum 96","training throughput",649.69,"sequences/s",tf2+T2S)
R("dle-tf2bert-a100-256g-s128-amp","32x DGX A100 (80GB per heading; text says 40GB)","A100-SXM4-80GB",256,32,"DGX A100 nodes; inter-node fabric not stated in source","BERT-Large pretraining","seq 128; micro-batch 312/GPU x 1 accumulation (multi-node table); "+dt2,"AMP (FP16 mixed, +XLA)",79872,"DP=256; grad-accum 1","training throughput",110280.73,"sequences/s",tf2+T2M)
# --- Paddle BERT-Large
pdb=DLE+"PaddlePaddle/LanguageModeling/BERT/README.md"
PS="#pre-training-nvidia-dgx-a100-8x-a100-80gb"; PM="#pre-training-nvidia-dgx-a100-8x-a100-80gb-multi-node-scaling"
dpb="LAMB pretraining; LDDL loader (binned by length); PaddlePaddle 22.12-py3 per README (Dockerfile @a5388a45 says 23.06); cuDNN fused MHA (commit a5388a45); bert-large-uncased default; averaged over a few training iterations"
R("dle-pdbert-a100-1g-s128-amp","DGX A100 80GB (1 GPU used)","A100-SXM4-80GB",1,1,"single GPU","BERT-Large pretraining","seq 128; accumulated 8192/GPU = micro-batch 256 x 32 accumulation; "+dpb,"AMP (FP16 mixed)",8192,"DP=1; grad-accum 32","training throughput",694,"sequences/s",pdb+PS)
R("dle-pdbert-a100-8g-s128-amp","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 128; accumulated 8192/GPU = micro-batch 256 x 32 accumulation; "+dpb,"AMP (FP16 mixed)",65536,"DP=8; grad-accum 32","training throughput",5541,"sequences/s",pdb+PS)
R("dle-pdbert-a100-8g-s512-tf32","DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","BERT-Large pretraining","seq 512; accumulated 4096/GPU = micro-batch 16 x 256 accumulation; "+dpb,"TF32",32768,"DP=8; grad-accum 256","training throughput",851,"sequences/s",pdb+PS)
R("dle-pdbert-a100-256g-s128-amp","32x DGX A100 80GB","A100-SXM4-80GB",256,32,"DGX A100 nodes; inter-node fabric not stated in source","BERT-Large pretraining","seq 128; micro-batch 256/GPU x 1 accumulation (multi-node table; accumulated 256/GPU); "+dpb,"AMP (FP16 mixed)",65536,"DP=256; grad-accum 1","training throughput",157952,"sequences/s",pdb+PM)
R("dle-pdbert-a100-256g-s512-amp","32x DGX A100 80GB","A100-SXM4-80GB",256,32,"DGX A100 nodes; inter-node fabric not stated in source","BERT-Large pretraining","seq 512; micro-batch 32/GPU x 4 accumulation (multi-node table; accumulated 128/GPU); "+dpb,"AMP (FP16 mixed)",32768,"DP=256; grad-accum 4","training throughput",60206,"sequences/s",pdb+PM)
# --- JAX-Toolbox Pax GPT
JT="https://github.com/NVIDIA/JAX-Toolbox/blob/00056429554ef1a00c4613fa127cc7a3c0c118db/rosetta/rosetta/projects/pax/README.md"
CFG=" ; shapes from https://github.com/google/paxml/blob/04516ac858bbd5143aed2262bbd1e505f6679e28/paxml/contrib/gpu/scripts_gpu/configs.py"
s126="126M; table: DP 64, FSDP 1, TP 1, 4/GPU; hidden 768; 12 layers; 12 heads; seq 2048; vocab 50304 (configs.py GPT126M); no flash attention; Pile; jax:24.04-paxml-py3"
s5b="5B; table: DP 1, FSDP 256 (fully sharded data parallel: parameters, gradients and optimizer state sharded), TP 1, 8/GPU; hidden 4096; 24 layers; 32 heads; seq 2048; vocab 50304 (configs.py GPT5B); flash attention; Pile; jax:24.04-paxml-py3"
s175="table: DP 1, FSDP 256 (fully sharded data parallel), TP 1, 6/GPU; hidden 12288; 96 layers; 96 heads; seq 2048; vocab 50257 (configs.py GPT175B); flash attention; C4 from MLPerf checkpoint; jax:24.04-paxml-py3"
IB="inter-node fabric not stated in source"
R("pax-gpt5b-a100-256g-tebf16","32x DGX A100 80GB","A100-SXM4-80GB",256,32,"DGX A100 nodes; "+IB,"GPT (Pax 5B)",s5b,"BF16 (Transformer Engine)",2048,"dp=256,zero=on; TP=1","training throughput",718.19,"sequences/s",JT+"#a100-results"+CFG)
R("pax-gpt175b-a100-256g-tebf16","32x DGX A100 80GB","A100-SXM4-80GB",256,32,"DGX A100 nodes; "+IB,"GPT-3 175B (Pax)",s175,"BF16 (Transformer Engine)",1536,"dp=256,zero=on; TP=1","training throughput",20.44,"sequences/s",JT+"#a100-results"+CFG)
R("pax-gpt126m-h100-64g-tebf16","8x DGX H100","H100-SXM5-80GB",64,8,"DGX H100 nodes; "+IB,"GPT (Pax 126M)",s126,"BF16 (Transformer Engine)",256,"DP=64; TP=1","training throughput",4709.12,"sequences/s",JT+"#h100-results"+CFG)
R("pax-gpt5b-h100-256g-tebf16","32x DGX H100","H100-SXM5-80GB",256,32,"DGX H100 nodes; "+IB,"GPT (Pax 5B)",s5b,"BF16 (Transformer Engine)",2048,"dp=256,zero=on; TP=1","training throughput",1657.24,"sequences/s",JT+"#h100-results"+CFG)
R("pax-gpt5b-h100-256g-fp8","32x DGX H100","H100-SXM5-80GB",256,32,"DGX H100 nodes; "+IB,"GPT (Pax 5B)",s5b,"FP8 (Transformer Engine)",2048,"dp=256,zero=on; TP=1","training throughput",2374.66,"sequences/s",JT+"#h100-results"+CFG)
R("pax-gpt175b-h100-256g-tebf16","32x DGX H100","H100-SXM5-80GB",256,32,"DGX H100 nodes; "+IB,"GPT-3 175B (Pax)",s175,"BF16 (Transformer Engine)",1536,"dp=256,zero=on; TP=1","training throughput",51.00,"sequences/s",JT+"#h100-results"+CFG)
R("pax-gpt175b-h100-256g-fp8","32x DGX H100","H100-SXM5-80GB",256,32,"DGX H100 nodes; "+IB,"GPT-3 175B (Pax)",s175,"FP8 (Transformer Engine)",1536,"dp=256,zero=on; TP=1","training throughput",84.45,"sequences/s",JT+"#h100-results"+CFG)
# --- JAX-Toolbox ViT-B/16
VT="https://github.com/NVIDIA/JAX-Toolbox/blob/00056429554ef1a00c4613fa127cc7a3c0c118db/rosetta/rosetta/projects/vit/README.md#vit-b16 (table added in 1f5cba85; shapes/dtype from configs/base.gin, image 224 from configs/base_pretrain_imagenet.gin at the same commit)"
dv="ViT-B/16 pretraining, 87M params; hidden 768; 12 layers; 12 heads; patch 16; image 224 (gin); ImageNet-1k via DALI CPU webdataset; container ghcr.io/nvidia/t5x:vit-2023-07-21; 512/GPU; table says Data Parallel 32 on 8 GPUs (inconsistent; pure data parallel per README text)"
R("rosetta-vitb16-a100-8g","1x DGX A100 80GB","A100-SXM4-80GB",8,1,"DGX A100 NVLink3/NVSwitch (not stated in source)","ViT-B/16",dv,"BF16 (bfloat16: singleprocess_pretrain.sh passes its PREC argument as GoogleViTConfig.dtype over base.gin's jnp.float32 default; every README pretraining and fine-tuning command passes bfloat16)",4096,"DP=8; grad-accum 1","training throughput",7200.38,"images/s",VT)
R("rosetta-vitb16-h100-8g","8x H100 (system not stated)","H100",8,1,NS,"ViT-B/16",dv,"BF16 (bfloat16: singleprocess_pretrain.sh passes its PREC argument as GoogleViTConfig.dtype over base.gin's jnp.float32 default; every README pretraining and fine-tuning command passes bfloat16)",4096,"DP=8; grad-accum 1","training throughput",11669.52,"images/s",VT)
# --- NeMo 24.07
NM="https://github.com/NVIDIA/NeMo/blob/070a0bb168d405d653b9734c0017cf5078e77c0d/docs/source/performance/performance_summary.md (NeMo 24.07 container; System: DGX-H100)"
LN=" ; GPT shapes from https://github.com/NVIDIA/NeMo-Framework-Launcher/blob/{c}/launcher_scripts/conf/training/gpt3/{m}.yaml (not stated in the table)"
R("nemo2407-gpt3-5b-64g","8x DGX H100","H100-SXM (DGX H100)",64,8,NS,"GPT (NeMo GPT3-5B)","5B; hidden 4096; 24 layers; 32 heads; seq 2048; MBS 4; GPT-2 BPE vocab padded to x128; table also gives 736 model TFLOP/s/GPU","FP8",2048,"TP=1; PP=1; CP=1; VP=1; DP=64 (derived)","training throughput per GPU",22521,"tokens/s/GPU",NM+LN.format(c="00af8f261f73a3eda179c4e67a467d61792f54d3",m="5b"))
R("nemo2407-gpt3-20b-64g","8x DGX H100","H100-SXM (DGX H100)",64,8,NS,"GPT (NeMo GPT3-20B)","20B; hidden 6144; 44 layers; 48 heads; seq 2048; MBS 2; GPT-2 BPE vocab padded to x128; table also gives 750 model TFLOP/s/GPU","FP8",256,"TP=2; PP=1; CP=1; VP=1; DP=32 (derived)","training throughput per GPU",5851,"tokens/s/GPU",NM+LN.format(c="056a90edf9140a32bfd39652509244e7db055651",m="20b"))
R("nemo2407-gpt3-175b-128g","16x DGX H100","H100-SXM (DGX H100)",128,16,NS,"GPT-3 175B pretraining","seq 2048; MBS 1; NeMo 24.07; table also gives 782 model TFLOP/s/GPU","FP8",256,"TP=4; PP=8; VP=6; CP=1; DP=4 (derived)","training throughput per GPU",726,"tokens/s/GPU",NM)
R("nemo2407-llama2-13b-16g","2x DGX H100","H100-SXM (DGX H100)",16,2,NS,"Llama 2 13B pretraining","seq 4096; MBS 1; NeMo 24.07; table also gives 754 model TFLOP/s/GPU","FP8",128,"TP=1; PP=4; VP=10; CP=1; DP=4 (derived)","training throughput per GPU",8646,"tokens/s/GPU",NM)
R("nemo2407-llama3-8b-8g","1x DGX H100","H100-SXM (DGX H100)",8,1,NS,"Llama 3 8B pretraining","seq 8192; MBS 1; NeMo 24.07; table also gives 697 model TFLOP/s/GPU","FP8",128,"TP=1; PP=1; CP=2; VP=1; DP=4 (derived)","training throughput per GPU",12036,"tokens/s/GPU",NM)
R("nemo2407-llama3-70b-64g","8x DGX H100","H100-SXM (DGX H100)",64,8,NS,"Llama 3 70B pretraining","seq 8192; MBS 1; NeMo 24.07; table also gives 738 model TFLOP/s/GPU","FP8",128,"TP=4; PP=4; CP=2; VP=5; DP=2 (derived)","training throughput per GPU",1533,"tokens/s/GPU",NM)
# --- MLPerf v3.1 GPT-3
M31="https://github.com/mlcommons/training_results_v3.1/blob/d06288b2bd675a9d88e0e6181f5bb5626b71ec19/NVIDIA/"
NET="NVLink Gen4 900GB/s + NVSwitch Gen3; 8x ConnectX-7 IB NDR 400Gb/s per node (MLPerf system JSON)"
g3d="hidden 12288; 96 layers; 96 heads; seq 2048; resumes from checkpoint to log perplexity 2.69; NeMo/PyTorch NGC 23.09; interleave 12 (conf/custom.yaml default); distributed optimizer; TP comm overlap"
def g(idn,nodes,gbs,dp,line,step,val,cfgname,res):
    R(idn,f"{nodes}x DGX H100 (Eos; MLPerf v3.1 closed, NVIDIA)","H100-SXM5-80GB",nodes*8,nodes,NET,"GPT-3 175B (MLPerf)",g3d,"FP8 (hybrid, Transformer Engine)",gbs,f"TP=4; PP=8; VP=12; DP={dp} (derived); microbatch 1; zero=on",f"train_step_timing at step counter {step} (line {line})",val,"s per global step",M31+f"results/{res}/gpt3/result_0.txt ; config NVIDIA/benchmarks/gpt3/implementations/pytorch/{cfgname}")
g("mlp31-gpt3-512g-step",64,2048,16,612,41943040,11.03638744354248,"config_DGXH100_64x8x192x4x8_mbs1.sh","eos_n64_ngc23.09_nemo")
g("mlp31-gpt3-4096g-step",512,2048,128,4644,41943040,1.6233389377593994,"config_DGXH100_512x8x16x4x8_mbs1.sh","eos-dfw_n512_ngc23.09_nemo")
g("mlp31-gpt3-8192g-step",1024,4096,256,9260,83886080,1.6190931797027588,"config_DGXH100_1024x8x16x4x8_mbs1.sh","eos-dfw_n1024_ngc23.09_nemo")
g("mlp31-gpt3-10752g-step",1344,2688,336,12132,55050240,0.9272258281707764,"config_DGXH100_1344x8x8x4x8_mbs1.sh","eos-dfw_n1344_ngc23.09_nemo")
# --- MLPerf ResNet
R("mlp31-rn50-dgxh100-8n","8x DGX H100 (Eos; MLPerf v3.1 closed, NVIDIA)","H100-SXM5-80GB",64,8,NET,"ResNet-50 v1.5","MLPerf ImageNet; MXNet NGC 23.09; DALI; LARS; 50/GPU (config_DGXH100_multi_8x8x50.sh)","Mixed (FP16)",3200,"DP=64","training throughput, epoch 10 (tracked_stats throughput, line 235)",317782.8566259594,"images/s",M31+"results/eos_n8_ngc23.09_mxnet/resnet/result_0.txt")
M40="https://github.com/mlcommons/training_results_v4.0/blob/6fe954378efe4a1a1bd665550b18ff8f26018def/NVIDIA/"
R("mlp40-rn50-dgxh100-1n","1x DGX H100 (Eos; MLPerf v4.0 closed, NVIDIA)","H100-SXM5-80GB",8,1,"NVLink Gen4 900GB/s + NVSwitch Gen3 (MLPerf system JSON)","ResNet-50 v1.5","MLPerf ImageNet; MXNet NGC 24.04; DALI; LARS","Mixed (FP16)",3200,"DP=8","training throughput, epoch 10 (tracked_stats throughput, line 237)",57327.214360665945,"images/s",M40+"results/eos_ngc24.04_mxnet/resnet/result_0.txt")
R("mlp40-llama70b-lora-1n","1x DGX H100 (Eos; MLPerf v4.0 closed, NVIDIA)","H100-SXM5-80GB",8,1,"NVLink Gen4 900GB/s + NVSwitch Gen3 (MLPerf system JSON)","Llama 2 70B LoRA fine-tuning (MLPerf)","LoRA rank 16 (alpha 32) on frozen base; seq 8192 (MAX_SEQLEN default in conf/megatron_gpt_peft_tuning_config.yaml); GovReport; NeMo NGC 24.04; 3,901 train samples; log: gradient_accumulation_steps 4; config: MINIBS=4, SP=1","FP8 (hybrid, Transformer Engine)",8,"TP=4; PP=1; CP=1; DP=2 (derived); microbatch 1; grad-accum 4; sp=on","training throughput at sample counter 2688 (tracked_stats, line 43)",2.154987334010239,"samples/s",M40+"results/eos_ngc24.04_nemo/llama2_70b_lora/result_0.txt ; config NVIDIA/benchmarks/llama2_70b_lora/implementations/nemo/config_DGXH100_1x8x4xtp4pp1cp1.sh")
with open("/work/research-issue11/candidate-rows.csv","w",newline="") as f:
    w=csv.writer(f, lineterminator="\n"); w.writerow(H)
    for r in rows: w.writerow(r)
ids=[r[0] for r in rows]; assert len(ids)==len(set(ids))
print(len(rows))
