"""Loads libmlxport and declares the C API's signatures and structs (include/mlxport/*.h) for
ctypes. ctypes.CDLL releases the GIL around every foreign call, so model computations run
without it; the progress callback re-acquires it while it runs."""
import ctypes
import glob
import os

c_size_t, c_int, c_char_p, c_void_p, c_double, c_float = (ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
                                                         ctypes.c_void_p, ctypes.c_double, ctypes.c_float)
P = ctypes.POINTER


def _find():
    env = os.environ.get("MLXPORT_LIBRARY")
    if env:
        return env
    here = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libmlxport.so*")))
    if here:
        return here[0]
    return "libmlxport.so.0"  # an installed library (ldconfig / LD_LIBRARY_PATH)


LIBRARY_PATH = _find()
lib = ctypes.CDLL(LIBRARY_PATH)


class ModelOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("threads", c_int), ("compute", c_int), ("batch_size", c_size_t),
                ("max_length", c_size_t), ("device", ctypes.c_char_p),
                ("device_dtype", ctypes.c_char_p)]


class EncodeOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("add_special_tokens", c_int), ("max_length", c_size_t),
                ("truncation", c_int), ("padding", c_int)]


class Encoding(ctypes.Structure):
    _fields_ = [("n", c_size_t), ("seq_len", c_size_t), ("input_ids", P(ctypes.c_int32)),
                ("attention_mask", P(ctypes.c_int32)), ("token_type_ids", P(ctypes.c_int32)),
                ("n_tokens", P(c_size_t))]


PROGRESS_FN = ctypes.CFUNCTYPE(None, c_void_p, c_size_t, c_size_t, c_char_p)


class ConvertOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("source", c_char_p), ("output", c_char_p), ("quantize", c_int),
                ("bits", c_int), ("group_size", c_int), ("dtype", c_char_p), ("skip", P(c_char_p)),
                ("n_skip", c_size_t), ("force", c_int), ("dry_run", c_int), ("progress", PROGRESS_FN),
                ("progress_user", c_void_p), ("cancel", P(c_int))]


class EvalOptions(ctypes.Structure):
    _fields_ = [("struct_size", c_size_t), ("dataset", c_char_p), ("data_file", c_char_p), ("data_dir", c_char_p),
                ("task", c_char_p), ("text_fields", c_char_p), ("label_field", c_char_p), ("score_field", c_char_p),
                ("label_names", c_char_p), ("format", c_char_p), ("max_samples", c_size_t),
                ("seed", ctypes.c_uint64), ("batch_size", c_size_t), ("max_length", c_size_t),
                ("latency_requests", c_size_t), ("threads", c_int), ("compute", c_char_p), ("template_", c_char_p),
                ("in_process", c_int), ("max_accuracy_drop", c_double), ("min_speedup", c_double),
                ("target_size_mb", c_double), ("model", c_char_p), ("baseline", c_char_p), ("name", c_char_p),
                ("update_card", c_int)]


def _sig(name, res, *args):
    f = getattr(lib, name)
    f.restype, f.argtypes = res, list(args)


_sig("mlxport_version", c_char_p)
_sig("mlxport_version_number", c_int)
_sig("mlxport_check_version", c_int, c_int)
_sig("mlxport_last_error", c_char_p)
_sig("mlxport_status_name", c_char_p, c_int)
_sig("mlxport_free", None, c_void_p)
_sig("mlxport_model_options_init", None, P(ModelOptions))
_sig("mlxport_model_open", c_int, c_char_p, P(ModelOptions), P(c_void_p))
_sig("mlxport_model_close", None, c_void_p)
_sig("mlxport_model_dim", c_size_t, c_void_p)
_sig("mlxport_model_num_labels", c_size_t, c_void_p)
_sig("mlxport_model_label", c_char_p, c_void_p, c_size_t)
_sig("mlxport_model_is_quantized", c_int, c_void_p)
_sig("mlxport_model_embed", c_int, c_void_p, c_size_t, P(c_char_p), c_int, P(c_float))
_sig("mlxport_model_classify", c_int, c_void_p, c_size_t, P(c_char_p), P(c_char_p), P(c_float))
_sig("mlxport_model_zero_shot", c_int, c_void_p, c_size_t, P(c_char_p), c_size_t, P(c_char_p), c_char_p, c_int,
     P(c_float))
_sig("mlxport_model_token_embeddings", c_int, c_void_p, c_char_p, P(c_void_p), P(c_size_t))
_sig("mlxport_encode_options_init", None, P(EncodeOptions))
_sig("mlxport_tokenizer_open", c_int, c_char_p, P(c_void_p))
_sig("mlxport_tokenizer_close", None, c_void_p)
_sig("mlxport_tokenizer_encode_batch", c_int, c_void_p, c_size_t, P(c_char_p), P(c_char_p), P(EncodeOptions),
     P(P(Encoding)))
_sig("mlxport_tokenizer_encode", c_int, c_void_p, c_char_p, c_char_p, P(EncodeOptions), P(ctypes.c_int32), c_size_t,
     P(c_size_t))
_sig("mlxport_encoding_free", None, P(Encoding))
_sig("mlxport_tokenizer_decode", c_int, c_void_p, P(ctypes.c_int32), c_size_t, c_int, P(c_void_p))
_sig("mlxport_tokenizer_vocab_size", c_size_t, c_void_p)
_sig("mlxport_tokenizer_token_to_id", ctypes.c_int32, c_void_p, c_char_p)
_sig("mlxport_tokenizer_id_to_token", c_char_p, c_void_p, ctypes.c_int32)
_sig("mlxport_convert_options_init", None, P(ConvertOptions))
_sig("mlxport_convert", c_int, P(ConvertOptions), P(c_void_p))
_sig("mlxport_eval_options_init", None, P(EvalOptions))
_sig("mlxport_evaluate", c_int, P(EvalOptions), P(c_void_p), P(c_int))

# the structs above must be the library's: *_init writes struct_size = the C sizeof
for _S, _init in [(ModelOptions, lib.mlxport_model_options_init), (EncodeOptions, lib.mlxport_encode_options_init),
                  (ConvertOptions, lib.mlxport_convert_options_init), (EvalOptions, lib.mlxport_eval_options_init)]:
    _o = _S()
    _init(ctypes.byref(_o))
    if _o.struct_size != ctypes.sizeof(_S):
        raise ImportError(f"mlxport: {LIBRARY_PATH} has a different {_S.__name__} layout "
                          f"({_o.struct_size} bytes, the bindings expect {ctypes.sizeof(_S)}): reinstall the package")
