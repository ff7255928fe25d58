"""The actor kernel: mailboxes, actor refs, ask/tell, supervisor, timers, reminders.

It imports nothing from ``satchel.actors``, ``satchel.storage`` or ``satchel.scripting``;
persistence reaches it through ``ReminderStore``.
"""

from ._actor import Actor as Actor
from ._actor import ActorContext as ActorContext
from ._actor import Lending as Lending
from ._held import Held as Held
from ._mailbox import Mailbox as Mailbox
from ._messages import ReminderFired as ReminderFired
from ._messages import ReplySlot as ReplySlot
from ._messages import TimerFired as TimerFired
from ._native import Native as Native
from ._native import NativeEvent as NativeEvent
from ._native import Parker as Parker
from ._native import current_native as current_native
from ._persistence import MemoryReminders as MemoryReminders
from ._persistence import Reminder as Reminder
from ._persistence import ReminderStore as ReminderStore
from ._persistence import SharedReminderStore as SharedReminderStore
from ._persistence import TakenReminder as TakenReminder
from ._placement import Placement as Placement
from ._spec import ActorSpec as ActorSpec
from ._spec import Intensity as Intensity
from ._spec import Restart as Restart
from ._spec import Strategy as Strategy
from ._stats import ActorStatistics as ActorStatistics
from ._stats import SupervisorStatistics as SupervisorStatistics
from ._supervisor import ActorRef as ActorRef
from ._supervisor import Supervisor as Supervisor
from ._supervisor import open_supervisor as open_supervisor
