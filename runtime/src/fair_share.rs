//! Fair share of the executor threads between tenants: one tenant's guest code runs
//! on at most [`RuntimeConfig::tenant_parallelism`](crate::RuntimeConfig) threads at
//! once, so a tenant with many CPU-bound executions waits behind itself, not in front
//! of every other tenant.
//!
//! Guests yield to the executor every epoch tick. Without this gate the executor's run
//! queue is first come, first served across all tasks: a tenant with 60 spinning
//! executions puts 60 slices of guest code ahead of a neighbour's request. With it, an
//! execution needs one of its tenant's *turns* to run. It keeps the turn across its
//! yields while none of the tenant's other executions waits for one, hands it on at
//! its next yield when one does, and gives it back whenever it waits for anything else
//! (a host call's I/O) or ends. So at most that many of a tenant's slices are ever
//! queued or running; the rest wait in order on the tenant's own queue, where waiting
//! takes no thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The turn queues of all tenants with an execution in progress.
pub(crate) struct FairShare {
    per_tenant: usize,
    tenants: Mutex<Tenants>,
}

struct Tenants {
    /// Weak, so that a tenant's queue goes away with its last execution.
    queues: HashMap<String, Weak<Queue>>,
    /// Map size at which the dead entries are swept (doubles with the live ones).
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 64;

/// One tenant's turns and how many of its executions wait for one.
struct Queue {
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl FairShare {
    /// Queues that let each tenant run guest code on `per_tenant` threads at once.
    pub(crate) fn new(per_tenant: usize) -> Self {
        FairShare {
            per_tenant: per_tenant.max(1),
            tenants: Mutex::new(Tenants {
                queues: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    /// A place in `tenant`'s queue for one execution.
    pub(crate) fn turns(&self, tenant: &str) -> Turns {
        // A poisoned lock only means another thread panicked while holding it; the
        // map is still a valid map.
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let queue = match tenants.queues.get(tenant).and_then(Weak::upgrade) {
            Some(queue) => queue,
            None => {
                let queue = Arc::new(Queue {
                    turns: Arc::new(Semaphore::new(self.per_tenant)),
                    waiting: AtomicUsize::new(0),
                });
                tenants
                    .queues
                    .insert(tenant.to_owned(), Arc::downgrade(&queue));
                if tenants.queues.len() >= tenants.sweep_at {
                    tenants.queues.retain(|_, queue| queue.strong_count() > 0);
                    tenants.sweep_at = (tenants.queues.len() * 2).max(FIRST_SWEEP);
                }
                queue
            }
        };
        Turns {
            queue,
            yielded: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Tenants whose queue is still tracked (for tests of the sweep).
    #[cfg(test)]
    fn tenants_tracked(&self) -> usize {
        self.tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .queues
            .len()
    }
}

/// One execution's place in its tenant's queue.
pub(crate) struct Turns {
    queue: Arc<Queue>,
    yielded: Arc<AtomicBool>,
}

/// Tells the execution's [`InTurns`] that the wait it is about to return is a yield
/// of running guest code (which keeps the turn unless someone waits for it), not a
/// wait for I/O (which gives it back).
#[derive(Clone)]
pub(crate) struct YieldMark(Arc<AtomicBool>);

impl YieldMark {
    /// Marks the current poll's wait as a yield.
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Turns {
    /// The mark the execution's epoch callback sets when it yields.
    pub(crate) fn yield_mark(&self) -> YieldMark {
        YieldMark(Arc::clone(&self.yielded))
    }

    /// Runs `inner` only while it holds one of the tenant's turns.
    pub(crate) fn run<F: Future + Unpin>(self, inner: F) -> InTurns<F> {
        InTurns {
            inner,
            queue: self.queue,
            yielded: self.yielded,
            turn: None,
            waiting: None,
        }
    }
}

thread_local! {
    /// Set while this thread polls an execution that holds a turn. An execution
    /// started inside another one's host call (a code-native flow's `invoke` runs the
    /// action's execution within its own poll) runs in that turn: taking a second one
    /// would wait for a turn its own caller holds.
    static IN_TURN: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a turn until dropped (a panic included).
struct InTurn;

impl InTurn {
    fn enter() -> InTurn {
        IN_TURN.with(|inside| inside.set(true));
        InTurn
    }
}

impl Drop for InTurn {
    fn drop(&mut self) {
        IN_TURN.with(|inside| inside.set(false));
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A place in the queue, counted in [`Queue::waiting`] until granted or abandoned.
struct Waiting {
    acquire: Acquire,
    queue: Arc<Queue>,
}

impl Waiting {
    fn new(queue: &Arc<Queue>) -> Self {
        queue.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting {
            acquire: Box::pin(Arc::clone(&queue.turns).acquire_owned()),
            queue: Arc::clone(queue),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.queue.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A future that runs only in its tenant's turns; see [`Turns::run`].
pub(crate) struct InTurns<F> {
    inner: F,
    queue: Arc<Queue>,
    yielded: Arc<AtomicBool>,
    turn: Option<OwnedSemaphorePermit>,
    waiting: Option<Waiting>,
}

impl<F> InTurns<F> {
    /// Takes a turn, or joins the queue for one. `Pending` while queued.
    fn take_turn(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.turn.is_some() {
            return Poll::Ready(());
        }
        if self.waiting.is_none() {
            // Tokio's semaphore hands released permits to its waiters first, so a free
            // permit means nobody of the tenant is in line.
            match Arc::clone(&self.queue.turns).try_acquire_owned() {
                Ok(turn) => {
                    self.turn = Some(turn);
                    return Poll::Ready(());
                }
                // Never closed; run without a turn rather than never.
                Err(TryAcquireError::Closed) => return Poll::Ready(()),
                Err(TryAcquireError::NoPermits) => self.waiting = Some(Waiting::new(&self.queue)),
            }
        }
        let Some(waiting) = self.waiting.as_mut() else {
            return Poll::Ready(());
        };
        match waiting.acquire.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(turn) => {
                self.waiting = None;
                self.turn = turn.ok();
                Poll::Ready(())
            }
        }
    }
}

impl<F: Future + Unpin> Future for InTurns<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if IN_TURN.with(Cell::get) {
            // Nested in an execution that holds a turn: this one runs in it.
            return Pin::new(&mut this.inner).poll(cx);
        }
        if this.take_turn(cx).is_pending() {
            return Poll::Pending;
        }
        this.yielded.store(false, Ordering::Relaxed);
        let polled = {
            let _inside = InTurn::enter();
            Pin::new(&mut this.inner).poll(cx)
        };
        let keep = polled.is_pending()
            && this.yielded.swap(false, Ordering::Relaxed)
            && this.queue.waiting.load(Ordering::SeqCst) == 0;
        if !keep {
            // Ended, waiting for I/O, or yielding while another execution of the
            // tenant waits: the turn goes to the first in line.
            this.turn = None;
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest code in miniature: `slices` polls, each ending in a marked yield.
    struct Slices {
        left: usize,
        mark: YieldMark,
    }

    impl Future for Slices {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            self.mark.mark();
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn slices(turns: Turns, left: usize) -> InTurns<Slices> {
        let mark = turns.yield_mark();
        turns.run(Slices { left, mark })
    }

    fn record(order: &Mutex<Vec<String>>, name: String) {
        order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(name);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_tenant_with_many_executions_alternates_with_another() {
        let share = FairShare::new(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for index in 0..4 {
            let run = slices(share.turns("busy"), 20);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                run.await;
                record(&order, format!("busy{index}"));
            }));
        }
        let run = slices(share.turns("quiet"), 20);
        let quiet_order = Arc::clone(&order);
        tasks.push(tokio::spawn(async move {
            run.await;
            record(&quiet_order, "quiet".into());
        }));
        for task in tasks {
            assert!(task.await.is_ok());
        }
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        // Started last with as much work as each busy one, the quiet tenant gets every
        // other turn and finishes first; first come, first served would finish it last.
        assert_eq!(order.len(), 5);
        assert_eq!(order[0], "quiet", "{order:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_execution_waiting_for_io_does_not_hold_its_turn() {
        let share = FairShare::new(1);
        let (reply, answer) = tokio::sync::oneshot::channel::<()>();
        let waiting = tokio::spawn(share.turns("t").run(answer));
        tokio::task::yield_now().await;
        // The first is parked on its I/O; the tenant's only turn is free for this one.
        slices(share.turns("t"), 3).await;
        assert!(reply.send(()).is_ok());
        assert!(matches!(waiting.await, Ok(Ok(()))));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_execution_nested_in_another_runs_in_its_turn() {
        let share = Arc::new(FairShare::new(1));
        let inner_share = Arc::clone(&share);
        // The outer execution awaits an inner one of the same tenant within its own
        // poll, as a code-native flow's `invoke` does.
        let outer = share.turns("t").run(Box::pin(async move {
            slices(inner_share.turns("t"), 3).await;
            7
        }));
        let finished = tokio::time::timeout(std::time::Duration::from_secs(10), outer).await;
        assert_eq!(finished.ok(), Some(7), "the nested execution never ran");
    }

    #[test]
    fn queues_of_tenants_gone_are_swept() {
        let share = FairShare::new(2);
        let live = share.turns("live");
        for index in 0..(FIRST_SWEEP * 3) {
            drop(share.turns(&format!("gone{index}")));
        }
        assert!(
            share.tenants_tracked() <= FIRST_SWEEP,
            "{}",
            share.tenants_tracked()
        );
        let again = share.turns("live");
        assert!(Arc::ptr_eq(&live.queue, &again.queue));
    }
}
