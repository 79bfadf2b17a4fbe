/* Kernel-shaped types for the `dwarf` fuzz target's seeds: the names and
 * nesting the server's DWARF readers look up (task_struct, mm_struct, the
 * printk ring, runqueues), with anonymous unions, bit-fields, arrays,
 * typedefs and a cross-unit declaration. Built by fuzz/seeds/make-dwarf.sh.
 * Not the kernel's real layouts: the fuzzer only needs the shapes. */
typedef unsigned long long u64;
typedef unsigned int u32;
typedef int pid_t;
struct list_head { struct list_head *next, *prev; };
typedef struct { long counter; } atomic_long_t;
struct percpu_counter { long long count; void *counters; };
struct inactive_task_frame { unsigned long r15, r14, r13, r12, bx, bp, ret_addr; };
struct cpu_context { unsigned long x19, x20, x21, x22, x23, x24, x25, x26, x27, x28, fp, sp, pc; };
struct thread_struct { unsigned long sp; unsigned short es, ds; struct cpu_context cpu_context; };
struct thread_info { unsigned long flags; u32 cpu; };
struct mm_struct {
	struct { unsigned long mmap_base; void *pgd; } ;
	struct percpu_counter rss_stat[4];
	unsigned long total_vm;
};
struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	void *stack;
	unsigned int flags;
	int on_cpu;
	unsigned int cpu;
	struct list_head tasks;
	struct mm_struct *mm, *active_mm;
	int exit_state;
	unsigned sched_reset_on_fork:1, sched_contributes_to_load:1;
	pid_t pid, tgid;
	struct task_struct *real_parent;
	struct list_head thread_group;
	union { struct list_head rcu; unsigned long rcu_users; };
	char comm[16];
	struct { int pids[4]; } ids[2];
	struct thread_struct thread;
};
struct rq { unsigned int nr_running; struct task_struct *curr, *idle; };
struct prb_data_blk_lpos { unsigned long begin, next; };
struct prb_desc { atomic_long_t state_var; struct prb_data_blk_lpos text_blk_lpos; };
struct printk_info { u64 seq, ts_nsec; unsigned short text_len; unsigned char facility; unsigned char flags:5, level:3; u32 caller_id; };
struct prb_desc_ring { unsigned int count_bits; struct prb_desc *descs; struct printk_info *infos; atomic_long_t head_id, tail_id, last_finalized_id; };
struct prb_data_ring { unsigned int size_bits; char *data; atomic_long_t head_lpos, tail_lpos; };
struct printk_ringbuffer { struct prb_desc_ring desc_ring; struct prb_data_ring text_data_ring; atomic_long_t fail; };
struct new_utsname { char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65]; };
struct uts_namespace { int ns; struct new_utsname name; };
struct page { unsigned long flags; union { struct { struct list_head lru; void *mapping; unsigned long index; }; }; int _refcount; };
enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID, PIDTYPE_MAX };

struct task_struct init_task;
struct mm_struct init_mm;
struct rq runqueues;
struct printk_ringbuffer printk_rb_static, *prb = &printk_rb_static;
struct uts_namespace init_uts_ns;
struct page *vmemmap;
unsigned long __per_cpu_offset[8];
enum pid_type pt;
void _start(void) { for (;;) ; }
