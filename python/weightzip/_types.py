"""Type tables of the two containers, which are the containers' (ggml's and safetensors'), not
weightzip's: the library reports a tensor's type as the container's id and name.

GGML_TYPES is checked against gguf-py's GGML_QUANT_SIZES and GGMLQuantizationType by
python/tests/test_gguf.py; the safetensors names are the ones in the file's JSON header.
"""

import enum

#: ggml tensor types by id: (name, elements per block, bytes per block, numpy dtype of one element
#: or None for block-quantized types). Ids 4, 5, 31-33 and 36-38 are retired; Q8_1 (9) only
#: exists in memory, never in files. BF16's dtype is its bits, uint16 (Archive.read_numpy; gguf-py
#: gives BF16 as bytes, and so does weightzip.gguf).
GGML_TYPES = {
    0: ("F32", 1, 4, "<f4"),
    1: ("F16", 1, 2, "<f2"),
    2: ("Q4_0", 32, 18, None),
    3: ("Q4_1", 32, 20, None),
    6: ("Q5_0", 32, 22, None),
    7: ("Q5_1", 32, 24, None),
    8: ("Q8_0", 32, 34, None),
    10: ("Q2_K", 256, 84, None),
    11: ("Q3_K", 256, 110, None),
    12: ("Q4_K", 256, 144, None),
    13: ("Q5_K", 256, 176, None),
    14: ("Q6_K", 256, 210, None),
    15: ("Q8_K", 256, 292, None),
    16: ("IQ2_XXS", 256, 66, None),
    17: ("IQ2_XS", 256, 74, None),
    18: ("IQ3_XXS", 256, 98, None),
    19: ("IQ1_S", 256, 50, None),
    20: ("IQ4_NL", 32, 18, None),
    21: ("IQ3_S", 256, 110, None),
    22: ("IQ2_S", 256, 82, None),
    23: ("IQ4_XS", 256, 136, None),
    24: ("I8", 1, 1, "i1"),
    25: ("I16", 1, 2, "<i2"),
    26: ("I32", 1, 4, "<i4"),
    27: ("I64", 1, 8, "<i8"),
    28: ("F64", 1, 8, "<f8"),
    29: ("IQ1_M", 256, 56, None),
    30: ("BF16", 1, 2, "<u2"),
    34: ("TQ1_0", 256, 54, None),
    35: ("TQ2_0", 256, 66, None),
    39: ("MXFP4", 32, 17, None),
    40: ("NVFP4", 64, 36, None),
    41: ("Q1_0", 128, 18, None),
}


def ggml_type_name(type_id):
    """The name of a ggml type id ("Q4_K"), or "type N" for one this module does not know."""
    entry = GGML_TYPES.get(type_id)
    return entry[0] if entry else "type %d" % type_id


#: safetensors dtypes (the names of its JSON header) and the numpy dtype of one element. BF16
#: and the 8-bit floats are ml_dtypes' types, which numpy arrays can hold (safetensors gives
#: BF16 the same way).
SAFETENSORS_DTYPES = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "U16": "<u2",
    "F16": "<f2",
    "BF16": "bfloat16",
    "I32": "<i4",
    "U32": "<u4",
    "F32": "<f4",
    "F64": "<f8",
    "I64": "<i8",
    "U64": "<u8",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
}


def numpy_dtype(name):
    """The numpy dtype of a safetensors dtype name (ml_dtypes for BF16 and F8); None if unknown."""
    import numpy as np

    spec = SAFETENSORS_DTYPES.get(name)
    if spec is None:
        return None
    if spec[0].isalpha() and len(spec) > 2:
        import ml_dtypes

        return np.dtype(getattr(ml_dtypes, spec))
    return np.dtype(spec)


def gguf_enums():
    """(GGMLQuantizationType, GGUFValueType): gguf-py's when it is installed, so that values
    compare and print as gguf-py's do; else IntEnums of this module with ggml's numbering."""
    try:
        from gguf import GGMLQuantizationType, GGUFValueType

        return GGMLQuantizationType, GGUFValueType
    except ImportError:
        return _OwnQuantizationType, _OwnValueType


_OwnQuantizationType = enum.IntEnum(
    "GGMLQuantizationType", [(name, type_id) for type_id, (name, *_rest) in GGML_TYPES.items()]
)

# GGUF's value types, by the numbers of the GGUF specification.
_OwnValueType = enum.IntEnum(
    "GGUFValueType",
    [
        ("UINT8", 0),
        ("INT8", 1),
        ("UINT16", 2),
        ("INT16", 3),
        ("UINT32", 4),
        ("INT32", 5),
        ("FLOAT32", 6),
        ("BOOL", 7),
        ("STRING", 8),
        ("ARRAY", 9),
        ("UINT64", 10),
        ("INT64", 11),
        ("FLOAT64", 12),
    ],
)
