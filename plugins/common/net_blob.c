/* net_blob.c -- network plugins: the checksum that seals every model blob. */
#include "netcommon.h"

#include <zlib.h>

uint32_t ch__net_crc32(const unsigned char *p, size_t len) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (len) {
    uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, piece);
    p += piece;
    len -= piece;
  }
  return (uint32_t)crc;
}
