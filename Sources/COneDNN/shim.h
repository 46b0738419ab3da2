// oneDNN's C API (Debian libdnnl-dev 2.6) plus the two OpenMP calls the engine uses to set its thread count
// before it creates primitives (a primitive keeps the thread count it was created with).
#include <dnnl.h>
#include <malloc.h>  /* mallopt: keep large tensor buffers in the heap (see Storage) */
int omp_get_max_threads(void);
void omp_set_num_threads(int n);
/* libgomp's entry for a parallel region (what GCC emits for `#pragma omp parallel`): the engine's own loops run
   on the same OpenMP thread pool as oneDNN, so the two never compete for the cores. */
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned int flags);
int omp_get_thread_num(void);
int omp_get_num_threads(void);
