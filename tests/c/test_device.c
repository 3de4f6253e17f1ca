/* The compute-device option (model/device.h, docs/cuda.md) without a GPU: "cpu|cuda[:N]"
 * parsing, the clear error of a build without CUDA, and in a CUDA build on a machine without a
 * usable GPU the error naming the CUDA error; every family (MobileBERT, the last one brought over,
 * included) goes on to open the device instead of being refused. (tests/gpu/run.sh checks the GPU
 * results themselves.) */
#include <string.h>

#include "model/device.h"
#include "model/model.h"
#include "testlib.h"

static void test_parse(void) {
  mp_device_spec d;
  CHECK_OK(mp_device_parse(NULL, &d));
  CHECK(d.kind == MP_DEVICE_CPU);
  CHECK_OK(mp_device_parse("cpu", &d));
  CHECK(d.kind == MP_DEVICE_CPU);
  CHECK_OK(mp_device_parse("cuda", &d));
  CHECK(d.kind == MP_DEVICE_CUDA && d.index == 0);
  CHECK_OK(mp_device_parse("cuda:3", &d));
  CHECK(d.kind == MP_DEVICE_CUDA && d.index == 3);
  CHECK(mp_device_parse("gpu", &d) == MP_ERR_INVALID_ARG);
  CHECK(mp_device_parse("cuda:", &d) == MP_ERR_INVALID_ARG);
  CHECK(mp_device_parse("cuda:x", &d) == MP_ERR_INVALID_ARG);
  CHECK(mp_device_parse("cuda:-1", &d) == MP_ERR_INVALID_ARG);
  CHECK(strstr(mp_last_error(), "cuda:N") != NULL);
}

static void test_dtype_parse(void) {
  mp_dtype dt = 0;
  CHECK_OK(mp_device_dtype_parse("float16", &dt));
  CHECK(dt == MP_F16);
  CHECK_OK(mp_device_dtype_parse("bf16", &dt));
  CHECK(dt == MP_BF16);
  CHECK_OK(mp_device_dtype_parse("float32", &dt));
  CHECK(dt == MP_F32);
  CHECK(mp_device_dtype_parse("half", &dt) == MP_ERR_INVALID_ARG);
  CHECK(strstr(mp_last_error(), "bfloat16") != NULL);
}

/* A folder with config.json only: the device is opened before the weights are read. */
static const char *model_dir(const char *name, const char *model_type) {
  static char dir[3][512];
  static int k;
  char *d = dir[k++ % 3];
  snprintf(d, 512, "%s/%s", mp_test_tmpdir(), name);
  char cfg[512];
  snprintf(cfg, sizeof cfg,
           "{\"model_type\": \"%s\", \"architectures\": [\"X\"], \"vocab_size\": 100, \"hidden_size\": 32, "
           "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"intermediate_size\": 64, "
           "\"max_position_embeddings\": 64%s, \"hidden_act\": \"gelu\"}",
           model_type, strcmp(model_type, "bert") ? "" : ", \"type_vocab_size\": 2");
  mp_test_write(d, "config.json", cfg);
  return d;
}

static void test_open_cuda_without_gpu(void) {
  mp_model *m = NULL;
  mp_model_options o = {.device = "cuda"};
  mp_status st = mp_model_open(model_dir("bert", "bert"), &o, &m);
  if (!mp_device_cuda_built()) {
    CHECK(st == MP_ERR_UNSUPPORTED);
    CHECKF(strstr(mp_last_error(), "built without CUDA (cmake -DMP_CUDA=ON)") != NULL, "%s", mp_last_error());
  } else if (st == MP_ERR_UNSUPPORTED && strstr(mp_last_error(), "CUDA:")) {
    /* a CUDA build on a machine without a usable GPU (CI): the CUDA error is named */
    CHECKF(strstr(mp_last_error(), "--device cuda:0") != NULL, "%s", mp_last_error());
  } else {
    /* a GPU is there: the open went on to the weights, which this folder lacks */
    CHECK(st != MP_OK);
    CHECKF(strstr(mp_last_error(), "CUDA") == NULL, "%s", mp_last_error());
  }
  mp_model_close(m);
}

/* The GPUs a build sees (mlxport version): none without the CUDA build (named), none with the
 * CUDA error named on a machine without a usable GPU (CI), else at least one with a name and its
 * memory; an index past the count leaves the name empty. */
static void test_device_info(void) {
  int count = -1;
  char name[256] = "x";
  size_t total = 1;
  mp_status st = mp_device_info(0, &count, name, sizeof name, &total);
  if (!mp_device_cuda_built()) {
    CHECK(st == MP_ERR_UNSUPPORTED && count == 0 && !name[0] && total == 0);
    CHECKF(strstr(mp_last_error(), "built without CUDA (cmake -DMP_CUDA=ON)") != NULL, "%s", mp_last_error());
  } else if (st) {
    CHECK(count == 0 && !name[0]);
    CHECKF(strstr(mp_last_error(), "CUDA: no usable GPU") != NULL, "%s", mp_last_error());
  } else {
    CHECK(count >= 1 && name[0] && total > 0);
    CHECK_OK(mp_device_info(count, &count, name, sizeof name, &total));
    CHECK(!name[0] && total == 0);
  }
}

/* MobileBERT is no longer refused on CUDA: the open reaches the device (or its missing weights). */
static void test_mobilebert_on_cuda(void) {
  mp_model *m = NULL;
  mp_model_options o = {.device = "cuda"};
  mp_status st = mp_model_open(model_dir("mobilebert", "mobilebert"), &o, &m);
  CHECK(st != MP_OK); /* no GPU here, or no weights in this folder */
  CHECKF(strstr(mp_last_error(), "not supported on CUDA") == NULL, "%s", mp_last_error());
  if (!mp_device_cuda_built()) {
    CHECK(st == MP_ERR_UNSUPPORTED);
    CHECKF(strstr(mp_last_error(), "built without CUDA") != NULL, "%s", mp_last_error());
  } else if (st == MP_ERR_UNSUPPORTED && strstr(mp_last_error(), "CUDA:")) {
    CHECKF(strstr(mp_last_error(), "--device cuda:0") != NULL, "%s", mp_last_error());
  }
  mp_model_close(m);
}

int main(void) {
  RUN(test_parse);
  RUN(test_dtype_parse);
  RUN(test_open_cuda_without_gpu);
  RUN(test_mobilebert_on_cuda);
  RUN(test_device_info);
  return mp_test_done();
}
