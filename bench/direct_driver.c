/*
** direct_driver.c -- the baseline of the function benchmarks: a plugin function called from C,
** with no host in between.
**
** The benchmark scripts compile this file into a small shared library at run time and load it
** into their own process (cffi), so the driver works on exactly the Arrow buffers the host is
** given -- the same memory, already in the same caches. It does what the host does, minus the
** host: dlopen the plugin, call plutino_plugin_v1(), find the function in the descriptor by
** name, create its state, then call call() (or aggregate()) in a loop timed with
** clock_gettime(), releasing each result (and its type, when the plugin gave one) inside the
** timed loop.
**
** The driver's plutino_host_api offers the allocator it is given: when alloc_fn is NULL, the C
** library's posix_memalign() with the 64-byte alignment plutino.h promises, and free(); or the
** host's own pair (the scripts pass the function pointers of the running host's
** plutino_host_api), so that the cost of the host's allocator can be told apart from the cost
** of calling through the host.
**
**   bench_fn* bench_open(so_path, function, alloc_fn, free_fn, err, errcap)   NULL on failure
**   int bench_run(fn, nargs, args, types, length, group_ids, ngroups, iters, &elapsed_ns, err, errcap)
**   void bench_close(fn)
**
** bench_run returns the plugin's status (0 = PLUTINO_OK) and, on success, the wall time of
** `iters` calls in *elapsed_ns. Arguments are BORROWED from the caller, as plutino.h says.
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plutino/plutino.h"

typedef struct bench_fn {
  const plutino_function* fn;
  void* state;
  plutino_host_api host;
  plutino_context ctx;
  char error[1024];
} bench_fn;

/* 64-byte aligned memory, as plutino.h promises; NULL when out of memory. */
static void* aligned64(size_t n) {
  void* p = NULL;
  return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bench_fn* bench_open(const char* so_path, const char* function, void* (*alloc_fn)(size_t),
                     void (*free_fn)(void*), char* err, size_t errcap) {
  void* lib = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  plutino_entry_fn entry;
  const plutino_plugin* plugin;
  bench_fn* b;
  uint32_t i;
  if (!lib) {
    snprintf(err, errcap, "dlopen(%s) failed: %s", so_path, dlerror());
    return NULL;
  }
  entry = (plutino_entry_fn)dlsym(lib, PLUTINO_ENTRY_SYMBOL);
  if (!entry) {
    snprintf(err, errcap, "%s has no symbol %s", so_path, PLUTINO_ENTRY_SYMBOL);
    return NULL;
  }
  plugin = entry();
  if (!plugin || plugin->kind != PLUTINO_KIND_FUNCTION) {
    snprintf(err, errcap, "%s is not a function library", so_path);
    return NULL;
  }
  b = (bench_fn*)calloc(1, sizeof *b);
  if (!b) {
    snprintf(err, errcap, "out of memory");
    return NULL;
  }
  for (i = 0; i < plugin->function_count; i++)
    if (strcmp(plugin->functions[i]->name, function) == 0) b->fn = plugin->functions[i];
  if (!b->fn) {
    snprintf(err, errcap, "%s has no function named '%s'", so_path, function);
    free(b);
    return NULL;
  }
  b->host.struct_size = sizeof b->host;
  b->host.abi_major = PLUTINO_ABI_MAJOR;
  b->host.abi_minor = PLUTINO_ABI_MINOR;
  b->host.host_version = "direct-driver";
  b->host.alloc = alloc_fn ? alloc_fn : aligned64;
  b->host.free = alloc_fn ? free_fn : free;
  b->ctx.struct_size = sizeof b->ctx;
  b->ctx.error_capacity = sizeof b->error;
  b->ctx.error = b->error;
  b->ctx.host = &b->host;
  b->ctx.plugin_name = plugin->name;
  b->ctx.rule_id = "";
  b->ctx.op_id = "";
  b->ctx.instance_id = 1;
  b->ctx.data_dir = ".";
  if (b->fn->create && b->fn->create(&b->ctx, &b->state) != PLUTINO_OK) {
    snprintf(err, errcap, "%s create failed: %s", function, b->error);
    free(b);
    return NULL;
  }
  return b;
}

int bench_run(bench_fn* b, int32_t nargs, const struct ArrowArray* const* args,
              const struct ArrowSchema* const* types, int64_t length, const int32_t* group_ids,
              int64_t ngroups, int64_t iters, int64_t* elapsed_ns, char* err, size_t errcap) {
  int aggregate = (b->fn->flags & PLUTINO_FN_AGGREGATE) != 0;
  int64_t k, t0;
  t0 = now_ns();
  for (k = 0; k < iters; k++) {
    struct ArrowArray out;
    struct ArrowSchema out_type;
    plutino_status status;
    out.release = NULL;
    out_type.release = NULL;
    b->error[0] = '\0';
    if (aggregate)
      status = b->fn->aggregate(&b->ctx, b->state, nargs, args, types, length, group_ids, ngroups, &out,
                                &out_type);
    else
      status = b->fn->call(&b->ctx, b->state, nargs, args, types, length, &out, &out_type);
    if (status != PLUTINO_OK) {
      snprintf(err, errcap, "%s returned status %d: %s", b->fn->name, (int)status, b->error);
      return (int)status;
    }
    out.release(&out);
    if (out_type.release) out_type.release(&out_type);
  }
  *elapsed_ns = now_ns() - t0;
  return PLUTINO_OK;
}

void bench_close(bench_fn* b) {
  if (!b) return;
  if (b->fn->destroy) b->fn->destroy(&b->ctx, b->state);
  free(b);
}
