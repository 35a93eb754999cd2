/*
 * uri.c - region names: "shm:NAME" or a file path (uri.h).
 */
#include <stdio.h>
#include <string.h>

#include "pstm.h"
#include "uri.h"

int uri_parse(const char *uri, char *path, size_t n, bool *is_shm)
{
	if (!uri || !*uri)
		return PSTM_EINVAL;
	/* pstmd:NAME is opened by the daemon (pstm_open), never a path */
	if (strncmp(uri, PSTM_DAEMON_PREFIX, strlen(PSTM_DAEMON_PREFIX)) == 0)
		return PSTM_EINVAL;
	if (strncmp(uri, "shm:", 4) == 0) {
		const char *name = uri + 4;
		if (!*name || strchr(name, '/') || strlen(name) > 200 ||
		    name[0] == '.')
			return PSTM_EINVAL;
		snprintf(path, n, "/dev/shm/%s", name);
		*is_shm = true;
		return 0;
	}
	if (strlen(uri) >= n - 32)
		return PSTM_EINVAL;
	snprintf(path, n, "%s", uri);
	*is_shm = false;
	return 0;
}

void uri_dir_of(const char *path, char *out, size_t n)
{
	snprintf(out, n, "%s", path);
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, n, ".");
	else if (slash == out)
		out[1] = 0;
	else
		*slash = 0;
}
