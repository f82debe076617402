/*
 * C11 threads on top of POSIX threads, linked into the ThreadSanitizer build of vitrine only.
 *
 * librdkafka 2.0.2 (Debian 12) starts its threads with thrd_create and locks with mtx_lock
 * and cnd_wait. glibc 2.36 implements these by calling its internal pthread functions
 * directly, and the TSan runtimes of gcc 12 and clang 14 intercept only the public
 * pthread_* symbols. So TSan never sees those threads start, and the first malloc in such a
 * thread crashes inside TSan because its per-thread allocator cache was never set up. The
 * locks would be invisible too, so TSan would not know that they order memory accesses.
 *
 * The executable's definitions below take precedence over glibc's for librdkafka's calls,
 * and they go through the intercepted pthread_* functions. The C11 types have the same size
 * and layout as the pthread types in glibc (mtx_t is pthread_mutex_t, cnd_t is
 * pthread_cond_t, once_flag is pthread_once_t, thrd_t is pthread_t), which is what glibc's
 * own implementation relies on.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is not pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is not pthread_cond_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag is not pthread_once_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is not pthread_t");

/* Each definition overrides glibc's, so none of them has a prototype of ours. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

struct c11_start {
    thrd_start_t func;
    void *arg;
};

static int thrd_result(int pthread_error)
{
    switch (pthread_error) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

/* A C11 start function returns int, but a POSIX one returns void *. */
static void *c11_thread_main(void *start_arg)
{
    struct c11_start start = *(struct c11_start *)start_arg;

    free(start_arg);
    return (void *)(intptr_t)start.func(start.arg);
}

int thrd_create(thrd_t *thread, thrd_start_t func, void *arg)
{
    struct c11_start *start = malloc(sizeof *start);
    int err;

    if (start == NULL)
        return thrd_nomem;
    start->func = func;
    start->arg = arg;
    err = pthread_create((pthread_t *)thread, NULL, c11_thread_main, start);
    if (err != 0)
        free(start);
    return thrd_result(err);
}

int thrd_join(thrd_t thread, int *result)
{
    void *value = NULL;
    int err = pthread_join((pthread_t)thread, &value);

    if (err == 0 && result != NULL)
        *result = (int)(intptr_t)value;
    return thrd_result(err);
}

int thrd_detach(thrd_t thread)
{
    return thrd_result(pthread_detach((pthread_t)thread));
}

int mtx_init(mtx_t *mutex, int type)
{
    pthread_mutexattr_t attr;
    int err;

    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    err = pthread_mutex_init((pthread_mutex_t *)mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    return thrd_result(err);
}

int mtx_lock(mtx_t *mutex)
{
    return thrd_result(pthread_mutex_lock((pthread_mutex_t *)mutex));
}

int mtx_trylock(mtx_t *mutex)
{
    return thrd_result(pthread_mutex_trylock((pthread_mutex_t *)mutex));
}

int mtx_timedlock(mtx_t *restrict mutex, const struct timespec *restrict deadline)
{
    return thrd_result(pthread_mutex_timedlock((pthread_mutex_t *)mutex, deadline));
}

int mtx_unlock(mtx_t *mutex)
{
    return thrd_result(pthread_mutex_unlock((pthread_mutex_t *)mutex));
}

void mtx_destroy(mtx_t *mutex)
{
    pthread_mutex_destroy((pthread_mutex_t *)mutex);
}

int cnd_init(cnd_t *cond)
{
    return thrd_result(pthread_cond_init((pthread_cond_t *)cond, NULL));
}

int cnd_signal(cnd_t *cond)
{
    return thrd_result(pthread_cond_signal((pthread_cond_t *)cond));
}

int cnd_broadcast(cnd_t *cond)
{
    return thrd_result(pthread_cond_broadcast((pthread_cond_t *)cond));
}

int cnd_wait(cnd_t *cond, mtx_t *mutex)
{
    return thrd_result(pthread_cond_wait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex));
}

/* C11 deadlines are CLOCK_REALTIME, as are pthread_cond_timedwait's by default. */
int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex,
                  const struct timespec *restrict deadline)
{
    return thrd_result(
        pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, deadline));
}

void cnd_destroy(cnd_t *cond)
{
    pthread_cond_destroy((pthread_cond_t *)cond);
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}
