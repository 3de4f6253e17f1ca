/* A small, defensive, read-only ZIP reader for PyTorch checkpoints (see zip.h). */
#include "format/zip.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/error.h"
#include "core/fs.h"

#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP_EOCD_LEN 22
#define ZIP64_LOC_SIG 0x07064b50u
#define ZIP64_LOC_LEN 20
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP64_EOCD_LEN 56
#define ZIP_CDH_SIG 0x02014b50u
#define ZIP_CDH_LEN 46
#define ZIP_LFH_SIG 0x04034b50u
#define ZIP_LFH_LEN 30
#define ZIP_MAX_ENTRIES (1u << 20)

struct mp_zip {
  char *what;
  mp_mmap map; /* when opened from a path */
  const uint8_t *data;
  size_t size;
  mp_zip_entry *entries;
  size_t count;
  const mp_zip_entry **sorted; /* entries sorted by name */
  char *names;                 /* all names, NUL-terminated, back to back */
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* [off, off+len) inside [0, size)? */
static int in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

static int cmp_names(const void *a, const void *b) {
  const mp_zip_entry *ea = *(const mp_zip_entry *const *)a;
  const mp_zip_entry *eb = *(const mp_zip_entry *const *)b;
  size_t n = ea->name_len < eb->name_len ? ea->name_len : eb->name_len;
  int c = memcmp(ea->name, eb->name, n);
  if (c) return c;
  return ea->name_len < eb->name_len ? -1 : ea->name_len > eb->name_len;
}

/* Reads the ZIP64 extra field (id 1) of a central directory header: the 64-bit values appear
 * in this order, only for the fields whose 32-bit value is saturated. */
static mp_status read_zip64_extra(const mp_zip *z, const char *ename, const uint8_t *extra, size_t extra_len,
                                  int need_size, int need_comp, int need_off, uint64_t *size, uint64_t *comp,
                                  uint64_t *off) {
  size_t p = 0;
  while (p + 4 <= extra_len) {
    uint16_t id = rd16(extra + p), len = rd16(extra + p + 2);
    if (len > extra_len - p - 4)
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s': extra field overruns its header; the archive is corrupt", z->what,
                    ename);
    if (id == 1) {
      size_t q = p + 4, end = p + 4 + len;
      if (need_size) {
        if (q + 8 > end) goto short_field;
        *size = rd64(extra + q);
        q += 8;
      }
      if (need_comp) {
        if (q + 8 > end) goto short_field;
        *comp = rd64(extra + q);
        q += 8;
      }
      if (need_off) {
        if (q + 8 > end) goto short_field;
        *off = rd64(extra + q);
      }
      return MP_OK;
    }
    p += 4 + (size_t)len;
  }
  if (need_size || need_comp || need_off)
    return mp_err(MP_ERR_FORMAT, "%s: entry '%s' needs a ZIP64 extra field but has none; the archive is corrupt",
                  z->what, ename);
  return MP_OK;
short_field:
  return mp_err(MP_ERR_FORMAT, "%s: entry '%s': ZIP64 extra field too short; the archive is corrupt", z->what, ename);
}

static mp_status parse(mp_zip *z) {
  const uint8_t *d = z->data;
  uint64_t n = z->size;
  if (n < ZIP_EOCD_LEN)
    return mp_err(MP_ERR_FORMAT, "%s: %llu bytes is too small for a ZIP archive (truncated file?)", z->what,
                  (unsigned long long)n);
  /* End of central directory: the last signature whose comment fits the file exactly is
   * preferred; the comment is at most 65535 bytes. */
  uint64_t lo = n > ZIP_EOCD_LEN + 65535u ? n - ZIP_EOCD_LEN - 65535u : 0;
  uint64_t eocd = UINT64_MAX;
  for (uint64_t p = n - ZIP_EOCD_LEN + 1; p-- > lo;) {
    if (rd32(d + p) == ZIP_EOCD_SIG && p + ZIP_EOCD_LEN + rd16(d + p + 20) <= n) {
      eocd = p;
      break;
    }
  }
  if (eocd == UINT64_MAX)
    return mp_err(MP_ERR_FORMAT,
                  "%s: no ZIP end-of-central-directory record (truncated or not a ZIP archive); re-download the file",
                  z->what);
  const uint8_t *e = d + eocd;
  uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), n_disk = rd16(e + 8), n_total = rd16(e + 10);
  uint64_t cd_size = rd32(e + 12), cd_off = rd32(e + 16);
  uint64_t cd_end_limit = eocd;
  if (eocd >= ZIP64_LOC_LEN && rd32(d + eocd - ZIP64_LOC_LEN) == ZIP64_LOC_SIG) {
    const uint8_t *loc = d + eocd - ZIP64_LOC_LEN;
    uint64_t z64 = rd64(loc + 8);
    if (rd32(loc + 4) != 0 || rd32(loc + 16) > 1)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: multi-disk ZIP64 archives are not supported", z->what);
    if (!in_bounds(z64, ZIP64_EOCD_LEN, eocd - ZIP64_LOC_LEN) || rd32(d + z64) != ZIP64_EOCD_SIG)
      return mp_err(MP_ERR_FORMAT,
                    "%s: ZIP64 end-of-central-directory record out of place (offset %llu); the archive "
                    "is corrupt or truncated",
                    z->what, (unsigned long long)z64);
    const uint8_t *r = d + z64;
    disk = rd32(r + 16);
    cd_disk = rd32(r + 20);
    n_disk = rd64(r + 24);
    n_total = rd64(r + 32);
    cd_size = rd64(r + 40);
    cd_off = rd64(r + 48);
    cd_end_limit = z64;
  }
  if (disk != 0 || cd_disk != 0 || n_disk != n_total)
    return mp_err(MP_ERR_UNSUPPORTED, "%s: multi-disk (split) ZIP archives are not supported", z->what);
  if (n_total > ZIP_MAX_ENTRIES)
    return mp_err(MP_ERR_FORMAT, "%s: ZIP central directory claims %llu entries (limit %u)", z->what,
                  (unsigned long long)n_total, ZIP_MAX_ENTRIES);
  if (!in_bounds(cd_off, cd_size, cd_end_limit))
    return mp_err(MP_ERR_FORMAT,
                  "%s: ZIP central directory (offset %llu, %llu bytes) lies outside the archive (%llu bytes); the "
                  "file is truncated or corrupt",
                  z->what, (unsigned long long)cd_off, (unsigned long long)cd_size, (unsigned long long)n);
  if (n_total > cd_size / ZIP_CDH_LEN)
    return mp_err(MP_ERR_FORMAT, "%s: ZIP central directory of %llu bytes cannot hold %llu entries", z->what,
                  (unsigned long long)cd_size, (unsigned long long)n_total);
  z->count = (size_t)n_total;
  z->entries = calloc(z->count ? z->count : 1, sizeof *z->entries);
  z->sorted = calloc(z->count ? z->count : 1, sizeof *z->sorted);
  z->names = malloc(cd_size + 1); /* names total < cd_size */
  if (!z->entries || !z->sorted || !z->names) return mp_err(MP_ERR_NOMEM, "%s: out of memory reading ZIP", z->what);
  size_t name_pos = 0;
  uint64_t p = cd_off, cd_end = cd_off + cd_size;
  for (size_t i = 0; i < z->count; i++) {
    if (!in_bounds(p, ZIP_CDH_LEN, cd_end) || rd32(d + p) != ZIP_CDH_SIG)
      return mp_err(MP_ERR_FORMAT, "%s: ZIP central directory entry %zu is missing or corrupt (offset %llu)", z->what,
                    i, (unsigned long long)p);
    const uint8_t *h = d + p;
    uint16_t flags = rd16(h + 8), method = rd16(h + 10);
    uint32_t crc = rd32(h + 16);
    uint64_t comp = rd32(h + 20), size = rd32(h + 24);
    size_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
    uint32_t dstart = rd16(h + 34);
    uint64_t lho = rd32(h + 42);
    if (!in_bounds(p + ZIP_CDH_LEN, (uint64_t)nlen + xlen + clen, cd_end))
      return mp_err(MP_ERR_FORMAT, "%s: ZIP central directory entry %zu overruns the directory", z->what, i);
    const char *nm = (const char *)h + ZIP_CDH_LEN;
    if (nlen == 0 || memchr(nm, 0, nlen))
      return mp_err(MP_ERR_FORMAT, "%s: ZIP entry %zu has an empty name or a NUL byte in its name", z->what, i);
    char *name = z->names + name_pos;
    memcpy(name, nm, nlen);
    name[nlen] = 0;
    name_pos += nlen + 1;
    MP_TRY(read_zip64_extra(z, name, h + ZIP_CDH_LEN + nlen, xlen, size == 0xFFFFFFFFu, comp == 0xFFFFFFFFu,
                            lho == 0xFFFFFFFFu, &size, &comp, &lho));
    if (dstart != 0 && dstart != 0xFFFFu)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: entry '%s' starts on another disk (split archive)", z->what, name);
    if (flags & 1u)
      return mp_err(MP_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted; encrypted archives are not supported", z->what,
                    name);
    if (method != 0 && method != 8)
      return mp_err(MP_ERR_UNSUPPORTED,
                    "%s: entry '%s' uses compression method %u; only stored (0) and deflate (8) are supported", z->what,
                    name, method);
    if (method == 0 && comp != size)
      return mp_err(MP_ERR_FORMAT, "%s: stored entry '%s' has compressed size %llu != size %llu", z->what, name,
                    (unsigned long long)comp, (unsigned long long)size);
    /* local header: must lie before the central directory and agree on the name */
    if (!in_bounds(lho, ZIP_LFH_LEN, cd_off) || rd32(d + lho) != ZIP_LFH_SIG)
      return mp_err(MP_ERR_FORMAT,
                    "%s: entry '%s': local header at offset %llu is missing or outside the archive (truncated?)",
                    z->what, name, (unsigned long long)lho);
    const uint8_t *l = d + lho;
    size_t lnlen = rd16(l + 26), lxlen = rd16(l + 28);
    if (!in_bounds(lho + ZIP_LFH_LEN, (uint64_t)lnlen + lxlen, cd_off))
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s': local header overruns the archive", z->what, name);
    if (lnlen != nlen || memcmp(l + ZIP_LFH_LEN, nm, nlen) != 0)
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s': local header names a different file; the archive is corrupt",
                    z->what, name);
    if (rd16(l + 8) != method)
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s': local header and central directory disagree on the method", z->what,
                    name);
    uint64_t data_off = lho + ZIP_LFH_LEN + lnlen + lxlen;
    if (!in_bounds(data_off, comp, cd_off))
      return mp_err(MP_ERR_FORMAT,
                    "%s: entry '%s': data (offset %llu, %llu bytes) runs past the end of the archive data; the file "
                    "is truncated or corrupt",
                    z->what, name, (unsigned long long)data_off, (unsigned long long)comp);
    mp_zip_entry *en = &z->entries[i];
    en->name = name;
    en->name_len = nlen;
    en->method = method;
    en->crc32 = crc;
    en->comp_size = comp;
    en->size = size;
    en->header_offset = lho;
    en->data_offset = data_off;
    z->sorted[i] = en;
    p += ZIP_CDH_LEN + (uint64_t)nlen + xlen + clen;
  }
  qsort(z->sorted, z->count, sizeof *z->sorted, cmp_names);
  for (size_t i = 1; i < z->count; i++)
    if (cmp_names(&z->sorted[i - 1], &z->sorted[i]) == 0)
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s' appears twice in the ZIP archive; refusing an ambiguous archive",
                    z->what, z->sorted[i]->name);
  return MP_OK;
}

static mp_status open_common(mp_zip *z, mp_zip **out) {
  mp_status s = parse(z);
  if (s != MP_OK) {
    mp_zip_close(z);
    return s;
  }
  *out = z;
  return MP_OK;
}

mp_status mp_zip_open(const char *path, mp_zip **out) {
  *out = NULL;
  mp_zip *z = calloc(1, sizeof *z);
  if (!z || !(z->what = strdup(path))) {
    free(z);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", path);
  }
  mp_status s = mp_mmap_open(path, &z->map);
  if (s != MP_OK) {
    mp_zip_close(z);
    return s;
  }
  z->data = z->map.data;
  z->size = z->map.size;
  return open_common(z, out);
}

mp_status mp_zip_open_memory(const void *data, size_t size, const char *what, mp_zip **out) {
  *out = NULL;
  if (!what) what = "<memory>";
  mp_zip *z = calloc(1, sizeof *z);
  if (!z || !(z->what = strdup(what))) {
    free(z);
    return mp_err(MP_ERR_NOMEM, "%s: out of memory", what);
  }
  z->data = data;
  z->size = data ? size : 0;
  return open_common(z, out);
}

void mp_zip_close(mp_zip *z) {
  if (!z) return;
  if (z->map.data) mp_mmap_close(&z->map);
  free(z->entries);
  free(z->sorted);
  free(z->names);
  free(z->what);
  free(z);
}

const char *mp_zip_name(const mp_zip *z) { return z->what; }
size_t mp_zip_count(const mp_zip *z) { return z ? z->count : 0; }
const mp_zip_entry *mp_zip_at(const mp_zip *z, size_t i) { return z && i < z->count ? &z->entries[i] : NULL; }

const mp_zip_entry *mp_zip_find(const mp_zip *z, const char *name) {
  if (!z || !name) return NULL;
  size_t nlen = strlen(name), lo = 0, hi = z->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const mp_zip_entry *e = z->sorted[mid];
    size_t n = e->name_len < nlen ? e->name_len : nlen;
    int c = memcmp(e->name, name, n);
    if (!c) c = e->name_len < nlen ? -1 : e->name_len > nlen;
    if (c == 0) return e;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  while (n) {
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return (uint32_t)c;
}

mp_status mp_zip_read(const mp_zip *z, const mp_zip_entry *e, uint64_t max_size, int verify, const uint8_t **data,
                      size_t *size, void **owned) {
  *data = NULL;
  *size = 0;
  *owned = NULL;
  if (max_size && e->size > max_size)
    return mp_err(MP_ERR_FORMAT, "%s: entry '%s' is %llu bytes, more than the %llu allowed", z->what, e->name,
                  (unsigned long long)e->size, (unsigned long long)max_size);
  if (e->size > SIZE_MAX / 2) return mp_err(MP_ERR_NOMEM, "%s: entry '%s' is too large", z->what, e->name);
  const uint8_t *src = z->data + e->data_offset;
  if (e->method == 0) {
    if (verify && crc_of(src, e->size) != e->crc32)
      return mp_err(MP_ERR_FORMAT, "%s: entry '%s': CRC-32 mismatch (corrupt archive); re-download the file", z->what,
                    e->name);
    *data = e->size ? src : (const uint8_t *)"";
    *size = (size_t)e->size;
    return MP_OK;
  }
  /* deflate: a ratio above ~1032:1 is impossible for deflate, so a lying size is caught early */
  if (e->size / 1032 > e->comp_size + 1)
    return mp_err(MP_ERR_FORMAT, "%s: entry '%s' claims %llu bytes from %llu compressed bytes; corrupt archive",
                  z->what, e->name, (unsigned long long)e->size, (unsigned long long)e->comp_size);
  uint8_t *buf = malloc(e->size ? (size_t)e->size : 1);
  if (!buf)
    return mp_err(MP_ERR_NOMEM, "%s: entry '%s': cannot allocate %llu bytes", z->what, e->name,
                  (unsigned long long)e->size);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    free(buf);
    return mp_err(MP_ERR_INTERNAL, "%s: zlib inflateInit2 failed", z->what);
  }
  uint64_t in_left = e->comp_size, out_done = 0;
  const uint8_t *in = src;
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (zs.avail_in == 0 && in_left) {
      uInt c = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
      zs.next_in = (Bytef *)(uintptr_t)in;
      zs.avail_in = c;
      in += c;
      in_left -= c;
    }
    uint64_t room = e->size - out_done;
    /* one spare byte of room so that output beyond the declared size is detected */
    uint8_t spare;
    if (room == 0) {
      zs.next_out = &spare;
      zs.avail_out = 1;
    } else {
      zs.next_out = buf + out_done;
      zs.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
    }
    uInt before_out = zs.avail_out, before_in = zs.avail_in;
    rc = inflate(&zs, Z_NO_FLUSH);
    uInt produced = before_out - zs.avail_out;
    if (room == 0 && produced) {
      rc = Z_DATA_ERROR;
      break;
    }
    out_done += produced;
    if (rc == Z_BUF_ERROR || (rc == Z_OK && produced == 0 && before_in == zs.avail_in && in_left == 0)) {
      rc = Z_DATA_ERROR; /* no progress possible: truncated stream */
      break;
    }
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || out_done != e->size) {
    free(buf);
    return mp_err(MP_ERR_FORMAT, "%s: entry '%s': deflate data is corrupt or does not match the declared size %llu",
                  z->what, e->name, (unsigned long long)e->size);
  }
  if (crc_of(buf, e->size) != e->crc32) {
    free(buf);
    return mp_err(MP_ERR_FORMAT, "%s: entry '%s': CRC-32 mismatch after inflating (corrupt archive)", z->what, e->name);
  }
  *data = buf;
  *size = (size_t)e->size;
  *owned = buf;
  return MP_OK;
}

mp_status mp_zip_verify(const mp_zip *z, const mp_zip_entry *e) {
  const uint8_t *d;
  size_t n;
  void *own;
  MP_TRY(mp_zip_read(z, e, 0, 1, &d, &n, &own));
  free(own);
  return MP_OK;
}
