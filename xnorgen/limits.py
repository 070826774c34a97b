"""The bounds xnorgen puts on anything a stranger's file can make it allocate or compute.

Contract section 7: input too large for a target is refused with one line, in well under a
minute and a few hundred MiB, before anything is allocated. Every check that enforces one of
these numbers names it, so this table is the one place to read (and change) them.
"""

#: net.yaml and .onnx text read at most this many bytes (the largest example is 4 KiB).
MAX_DESCRIPTION_BYTES = 4 << 20
#: YAML: nodes after expanding every alias (an alias bomb expands to billions), nesting depth.
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 32
#: A number in net.yaml has at most this many characters (Python refuses 4,300+ digit ints slowly).
MAX_NUMBER_CHARS = 32

#: An .onnx model file, weights inside (VGG-19's fp32 weights are 550 MiB).
MAX_ONNX_BYTES = 1 << 30

#: Layers in one network: 10,000 relu layers keep gcc busy for minutes; ResNet-18 has 70.
MAX_LAYERS = 1024
#: Any one size field (filters, units, kernel, stride, padding, an input dimension).
MAX_DIM = 1 << 16
#: Elements of any one tensor (activation or weight array). The generated C indexes tensors
#: with `int`, in bytes as well as elements, so 4 * 2^28 = 2^30 stays below INT_MAX.
MAX_TENSOR_ELEMENTS = 1 << 28
#: Parameters of the whole network, summed over its arrays (VGG-19 has 1.4e8).
MAX_PARAMETERS = 1 << 28
#: Arena bytes: offsets into it are C `int` constants.
MAX_ARENA_BYTES = (1 << 31) - 1

#: A weights .npz or input .npy: bytes on disk, and bytes of one member once decompressed.
MAX_ARRAY_FILE_BYTES = 2 << 30
#: Members of a weights .npz (a zip's directory is read before any array).
MAX_NPZ_MEMBERS = 4 * MAX_LAYERS
#: Samples in one `run --input` batch, and input bytes in all.
MAX_INPUT_BYTES = 1 << 30
