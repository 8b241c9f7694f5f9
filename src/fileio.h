/* fileio.h - the one whole-file reader for everything the user hands
 * espgang: manifests, images, stub files (and the check a report command
 * makes before it opens a log database).
 *
 * Contract: only regular files are read. A FIFO, a socket, a character or
 * block device or a directory is refused by its type, from stat(2), before
 * it is opened: opening a FIFO blocks until a writer comes, reading a device
 * never ends, and opening a serial device toggles its modem lines (which
 * resets a board). The file is then opened O_NONBLOCK|O_NOCTTY and its type
 * checked again on the descriptor, so a path swapped between the two checks
 * cannot block either. A size limit is checked against fstat and again
 * while reading (a file that grows). Nothing here can wait on another
 * process.
 *
 * Messages (eg_fault.msg, one line) start "<what> <path>: " when `what` is
 * given, and are the bare problem ("is a FIFO, not a regular file") when it
 * is NULL, for callers that put the path in front themselves.
 */
#ifndef EG_FILEIO_H
#define EG_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* Read the whole regular file `path`, at most `max` bytes, into a malloc'd
 * buffer with `slack` spare bytes after the data (zeroed; *out is never
 * NULL on success, free it). Errors: missing, unreadable, or not a regular
 * file -> EG_FILE_OPEN; a read error -> EG_FILE_READ; more than `max` bytes
 * -> `too_large` (the caller's code: EG_IMAGE_TOO_LARGE, EG_STUB_FORMAT,
 * EG_MANIFEST); out of memory -> EG_NOMEM. An empty file is not an error. */
eg_err eg_file_read(const char *path, const char *what, size_t max, eg_err too_large, size_t slack, uint8_t **out,
                    size_t *len, eg_fault *f);

/* The same type check without reading: EG_OK when `path` is a regular file
 * (EG_FILE_OPEN otherwise, message as above). */
eg_err eg_file_check_regular(const char *path, const char *what, eg_fault *f);

/* The first bytes of a regular file (a magic number): up to `cap` bytes
 * into buf, *got how many (fewer for a shorter file). Errors as
 * eg_file_read. */
eg_err eg_file_read_head(const char *path, const char *what, uint8_t *buf, size_t cap, size_t *got, eg_fault *f);

#endif
