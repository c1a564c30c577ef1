"""boto3 doing the work of a cold-process workload one request at a time, as Python s3exchange 0.1.1
does, in a fresh python3 process: an anchor in the same run for the Python reference figures,
which were measured elsewhere (Python s3exchange is not installable here). The timer starts after
the imports, before the client is made.

    python3 bench/boto3-child.py '{"workload": "loose", "endpoint": "http://127.0.0.1:1234", "bucket": "bench", ...}'

Workloads (the same fields as bench/cold-child.ts):
- loose: GetObject of each of `keys`, one after the other, bodies read whole;
- shards: each of `keys` (tar.gz archives) by one GET, read with tarfile in stream mode ('r|gz'),
  every member read whole;
- manifest: GET of `key`, whole text, split into lines, json.loads of each;
- put: PutObject of `count` objects of 4 KiB under `prefix`, one after the other.

Prints {"seconds", "items", "bytes", "peakRssMb"} as JSON.
"""

import json
import os
import resource
import sys
import tarfile
import time

import boto3
from botocore.config import Config

task = json.loads(sys.argv[1])
start = time.perf_counter()
s3 = boto3.client(
    "s3",
    endpoint_url=task["endpoint"],
    region_name="us-east-1",
    aws_access_key_id="bench",
    aws_secret_access_key="bench",
    config=Config(s3={"addressing_style": "path"}),
)
bucket = task["bucket"]
items = 0
size = 0
workload = task["workload"]
if workload == "loose":
    for key in task["keys"]:
        size += len(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        items += 1
elif workload == "shards":
    for key in task["keys"]:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                data = archive.extractfile(member)
                if data is not None:
                    size += len(data.read())
                    items += 1
elif workload == "manifest":
    text = s3.get_object(Bucket=bucket, Key=task["key"])["Body"].read().decode("utf-8")
    size = len(text)
    for line in text.split("\n"):
        if line:
            json.loads(line)
            items += 1
elif workload == "put":
    for i in range(task["count"]):
        data = os.urandom(2048) + b"sample-" * 292 + b"samp"
        s3.put_object(Bucket=bucket, Key=f"{task['prefix']}/obj-{i:06d}.bin", Body=data)
        items += 1
        size += len(data)
else:
    raise SystemExit(f"unknown workload {workload}")
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: the latter also counts the parent's resident set at the fork (see bench/lib.ts).
try:
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak_mb = peak_kb / 1024
print(json.dumps({"seconds": seconds, "items": items, "bytes": size, "peakRssMb": peak_mb}))
