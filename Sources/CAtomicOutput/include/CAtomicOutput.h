// The parts of irm's atomic outputs that need C: a signal handler that removes the temporary files
// of unfinished outputs (Sources/IRMKit/Support/SignalCleanup.swift is its Swift face), and the
// atomic exchange of two directories.
#ifndef IRM_CATOMICOUTPUT_H
#define IRM_CATOMICOUTPUT_H

/// Installs, once, handlers for SIGINT, SIGTERM and SIGHUP that remove every registered path and
/// then let the signal take its previous action (by default: end the process). A signal that is
/// ignored when this is first called (such as SIGHUP under nohup) stays ignored.
void irm_cleanup_install(void);

/// Registers `path` (copied) for removal by the handlers: rmdir when `is_directory`, else unlink.
/// Returns the slot to unregister, or -1 when the registry is full or memory is short (the path
/// is then left to the sweep of stale temporaries at the next run).
long irm_cleanup_register(const char *path, int is_directory);

/// Forgets a registered path; a slot of -1 is ignored.
void irm_cleanup_unregister(long slot);

/// The number of registered paths (for tests).
long irm_cleanup_registered_count(void);

/// With `deferring` 1, a handled signal that arrives is held back until the matching call with 0,
/// which then removes the registered paths and re-raises it. Calls nest.
void irm_cleanup_defer(int deferring);

/// Removes every registered path now, once (async-signal-safe): for a signal handler that ends the
/// process itself, such as the SIGBUS handler of mapped files.
void irm_cleanup_now(void);

/// Swaps the two paths atomically (Linux renameat2 with RENAME_EXCHANGE, macOS renamex_np with
/// RENAME_SWAP). Returns 0, or -1 with errno set; EINVAL, ENOSYS or ENOTSUP when the system or
/// the file system cannot exchange.
int irm_rename_exchange(const char *from, const char *to);

#endif
