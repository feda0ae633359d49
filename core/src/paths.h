/* paths.h -- where chicane finds its data (tracks, rewards, scripts) and resolves user paths. */
#ifndef CHICANE_PATHS_H
#define CHICANE_PATHS_H

#include <chicane/plugin.h>
#include <stddef.h>

#define CH_PATH_MAX 4096

/* The data directory: $CHICANE_DATA_DIR, else the source tree this binary was built from, else
** the install's share/chicane. */
const char *ch_data_dir(void);

/* A track given by name ("bayside") or by path ("x/y.track"): writes the file path. */
int ch_resolve_track(const char *name_or_path, char *out, size_t outlen, ch_error *err);

/* A file named relative to base_dir (the script's directory), else to the data directory. */
int ch_file_resolve(const char *name, const char *base_dir, char *out, size_t outlen,
                    ch_error *err);

/* The directory part of path ("." when none). */
void ch_dirname(const char *path, char *out, size_t outlen);

/* Read a whole file (NUL-terminated; *len excludes the NUL). Caller frees. */
int ch_read_file(const char *path, char **data, size_t *len, ch_error *err);

/* Lower-case hex SHA-256 of data (65 bytes out, NUL-terminated). */
void ch_sha256_hex(const void *data, size_t len, char out[65]);

#endif
