/*
 * chand_crc32c.h - CRC-32C (Castagnoli), the checksum of the journal's
 * records: the polynomial with hardware support on x86 (SSE 4.2) and arm64,
 * and better error detection than zlib's CRC-32 for short records.
 *
 * Copyright (c) 2026 The chand authors.  MIT License (see LICENSE).
 */
#ifndef CHAND_CRC32C_H
#define CHAND_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* chand_crc32c - extend crc (0 to start) with len bytes of data. */
uint32_t chand_crc32c(uint32_t crc, const void *data, size_t len);

#endif /* CHAND_CRC32C_H */
