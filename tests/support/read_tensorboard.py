"""Reads a kiln TensorBoard export with TensorBoard's own EventAccumulator and prints what it
found as JSON: every scalar tag's (step, value) pairs and every text tag's strings."""

import json
import sys

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
    TENSORS,
    SCALARS,
)

accumulator = EventAccumulator(sys.argv[1], size_guidance={SCALARS: 0, TENSORS: 0})
accumulator.Reload()
tags = accumulator.Tags()
scalars = {
    tag: [[event.step, event.value] for event in accumulator.Scalars(tag)]
    for tag in tags["scalars"]
}
texts = {
    tag: [
        [event.step, [s.decode("utf-8") for s in event.tensor_proto.string_val]]
        for event in accumulator.Tensors(tag)
    ]
    for tag in tags["tensors"]
}
print(json.dumps({"scalars": scalars, "texts": texts}))
