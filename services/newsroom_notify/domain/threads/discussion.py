"""The threads stage (keyed by article id): the discussion under one article.

It owns the article, its comments, its participants (for mentions) and its article-scope
followers, decides the candidates each approved comment has (reply, mention, follow_up), and
hands them to the follows stage under the comment author's key, which adds the author's
followers and merges everything per recipient. An author the follows stage said has no
followers (``Unfollowed``) needs no such merge: their comment's candidacies go to the inbox
from here (the same ones, ``domain.candidacies``), and who got them is kept with the comment
for its edits and removal. Handlers are idempotent: a replayed event re-emits the same
messages and changes no state twice.
"""

from __future__ import annotations

from datetime import datetime

from newsroom_notify.contract import events as ev
from newsroom_notify.domain.candidacies import candidacies, merge_candidates, no_follower
from newsroom_notify.domain.intents import Intent, Stage, ToStage
from newsroom_notify.domain.keys import (
    article_subject,
    comment_key,
    comment_subject,
    entity_key,
    member_key,
)
from newsroom_notify.domain.mentions import find_mentions
from newsroom_notify.domain.mentions import forget as forget_mentions
from newsroom_notify.domain.messages import (
    CHOICE_CARRIED_FOR,
    Activity,
    Chose,
    CommenterFollowed,
    Edit,
    Erase,
    FollowChange,
    ForgetParticipant,
    FormChoice,
    NoFollowers,
    Participated,
    Retraction,
)
from newsroom_notify.domain.model import (
    ERASED_NAME,
    ArticleInfo,
    Basis,
    Condition,
    Reason,
    Subject,
    erased_author_id,
)
from newsroom_notify.domain.state import Authored, CommentInfo, Thread, Unfollowed
from newsroom_notify.domain.threads.activity import ArticleActivity
from newsroom_notify.domain.threads.base import placeholder_article, summarise

RETRACTING = {"spam", "trash", "deleted"}


def comment_candidates(
    thread: Thread, comment: CommentInfo, parent: CommentInfo | None
) -> dict[str, list[Basis]]:
    """The rules from "Nobody hears about their own comment" to "Follows" as far as the thread
    knows them: who may hear of this comment, and why.

    The inbox still checks each basis's condition (consent, subscriptions) and picks the
    strongest basis that holds (rule "One notification per person per comment"). A reply is a
    candidate for its parent's author only if the parent was approved when the reply was first
    fanned out (``parent_approved``, kept so that a replay decides the same); a reply to a held
    comment never notifies its author.
    """
    author = comment.author_id
    aid = comment.article_id
    candidates: dict[str, list[Basis]] = {}

    def add(recipient: str, basis: Basis) -> None:
        if recipient != author:  # rule "Nobody hears about their own comment"
            candidates.setdefault(recipient, []).append(basis)

    approved = comment.parent_approved
    if approved is None:  # not fanned out yet (or stored before the decision was kept)
        approved = parent is not None and parent.status == "approved"
    # One frozen Basis per kind, shared by every recipient (built from validated values).
    if parent is not None and approved:
        add(
            parent.author_id,
            Basis.model_construct(
                reason=Reason.REPLY,
                condition=Condition.ASKED_FOR_REPLIES,
                scope="replies",
                target=aid,
                delivery=None,
            ),
        )
    mentions = sorted(find_mentions(comment.text, thread.participants, aid))
    if mentions:
        mention = Basis.model_construct(
            reason=Reason.MENTION,
            condition=Condition.CONSENTED,
            scope="replies",
            target=aid,
            delivery=None,
        )
        for mentioned in mentions:
            add(mentioned, mention)
    if thread.instant_followers:
        follow_up = Basis.model_construct(
            reason=Reason.FOLLOW_UP,
            condition=Condition.SUBSCRIBED,
            scope="article",
            target=aid,
            delivery="instant",
        )
        for follower in thread.instant_followers:
            add(follower, follow_up)
    return candidates


def _carried(authored: Authored | None, at: datetime) -> list[Chose]:
    """An author's choices in a thread that a reply posted (or approved) at ``at`` carries to
    them: those made before it, within a day of it."""
    if authored is None or not authored.chosen:
        return []
    return [c for c in authored.chosen.values() if c.at <= at and at - c.at <= CHOICE_CARRIED_FOR]


class ThreadsStage(ArticleActivity):
    """Handlers of the threads stage over its tables."""

    # ---------------------------------------------------------------- articles

    def on_article(self, event: ev.ArticlePublished | ev.ArticleUpdated) -> list[Intent]:
        """Store the article; a publication goes to its journalist's and section's followers."""
        data = event.data
        thread = self.threads.get(data.article_id) or Thread()
        info = ArticleInfo(
            id=data.article_id,
            title=data.title,
            url=data.url,
            journalist_id=data.author.id,
            section=data.section,
        )
        if thread.article != info:
            thread.article = info
            self.threads[data.article_id] = thread
        if event.type != "newsroom.article.published":
            return []
        activity = Activity(
            event="article",
            subject=Subject(key=article_subject(info.id), article=info),
            at=event.time,
            origin=event.id,
        )
        keys = [entity_key("journalist", info.journalist_id)]
        if info.section:
            keys.append(entity_key("section", info.section))
        return [ToStage(Stage.FOLLOWS, key, activity) for key in keys]

    # ---------------------------------------------------------------- comments

    def on_comment_posted(self, event: ev.CommentPosted) -> list[Intent]:
        """Record the comment and its author; fan out if it is approved (rule
        "Only approved comments notify")."""
        data = event.data
        aid, sid = data.article_id, data.author.subscriber_id
        out: list[Intent] = []
        thread = self.threads.get(aid) or Thread()
        changed = False
        if thread.participants.get(sid) != data.author.name:
            if sid not in thread.participants:
                out.append(
                    ToStage(Stage.INBOX, sid, Participated(subscriber_id=sid, article_id=aid))
                )
            if sid in thread.participants or len(thread.participants) < self.participants_max:
                thread.participants[sid] = data.author.name
                changed = True
            else:  # beyond the cap a newcomer cannot be mentioned by name in this thread
                self.on_capped("thread_participants")
        if changed:
            self.threads[aid] = thread
        choice = (
            FormChoice(
                subscriber_id=sid,
                name=data.author.name,
                email=data.author.email,
                guest=data.author.guest,
                article_id=aid,
                choice=data.notify,
                at=event.time,
            )
            if data.notify is not None
            else None
        )
        key = comment_key(aid, data.comment_id)
        comment = self.comments.get(key)
        if comment is None:  # a replay finds it stored and only re-emits
            authored = self.authored.get(member_key(aid, sid)) or Authored()
            if len(authored.comment_ids) < self.authored_max:
                authored.comment_ids.append(data.comment_id)
                self.authored[member_key(aid, sid)] = authored
            elif not authored.overflow:  # erasure searches the article's comments from now on
                authored.overflow = True
                self.authored[member_key(aid, sid)] = authored
                self.on_capped("authored")
            comment = CommentInfo(
                id=data.comment_id,
                article_id=aid,
                author_id=sid,
                author_name=data.author.name,
                parent_id=data.parent_id,
                status=data.status,
                text=data.text,
                posted_at=data.posted_at,
                # "Notify of" takes effect when the comment is first approved (rule "Guests
                # confirm first").
                notify=choice if data.status == "pending" else None,
            )
        if comment.status == "approved" and comment.notified_by in (None, event.id):
            # First time, or this very event again (a replay): the same messages again. Not
            # the choice of an author erased since: it would bring their name, address and
            # subscription back.
            if choice is not None and comment.author_id == sid:
                out.append(ToStage(Stage.INBOX, sid, choice))
                self._keep_choice(choice)
            out.extend(self._fan_out(thread, comment, event))
        self.comments[key] = comment
        return out

    def on_moderated(self, event: ev.CommentModerated) -> list[Intent]:
        """Approve (notify once), or remove (retract what it caused, rule
        "Removed after the fact")."""
        data = event.data
        return self._set_status(data.article_id, data.comment_id, data.status, event)

    def on_deleted(self, event: ev.CommentDeleted) -> list[Intent]:
        """A deleted comment is retracted like spam."""
        data = event.data
        return self._set_status(data.article_id, data.comment_id, "deleted", event)

    def on_edited(self, event: ev.CommentEdited) -> list[Intent]:
        """Update the text; never notify again. Recipients' pending digests get the new text."""
        data = event.data
        key = comment_key(data.article_id, data.comment_id)
        comment = self.comments.get(key)
        if comment is None:
            return []
        if comment.notified and comment.notified_text is None:
            comment.notified_text = comment.text  # what its notifications said
        comment.text = data.text
        self.comments[key] = comment
        if not comment.notified:
            return []
        thread = self.threads.get(data.article_id) or Thread()
        subject = self._subject(thread, comment)
        excerpt = ev.excerpt(data.text)
        if comment.direct is not None:  # sent from here: who got it is kept here
            return [
                ToStage(
                    Stage.INBOX,
                    rid,
                    Edit(recipient_id=rid, subject_key=subject.key, excerpt=excerpt),
                )
                for rid in comment.direct
            ]
        activity = Activity(
            event="edit", subject=subject, excerpt=excerpt, at=event.time, origin=event.id
        )
        return [ToStage(Stage.FOLLOWS, entity_key("commenter", comment.author_id), activity)]

    def _set_status(
        self, article_id: str, comment_id: str, status: str, event: ev.CloudEvent
    ) -> list[Intent]:
        key = comment_key(article_id, comment_id)
        comment = self.comments.get(key)
        if comment is None:
            return []
        comment.status = status  # type: ignore[assignment]
        thread = self.threads.get(article_id) or Thread()
        out: list[Intent] = []
        if status == "approved" and comment.notified_by in (None, event.id):
            # The first approval notifies, and so does the same event replayed (same ids).
            # Another approval later (again, or after a removal) does not: rule "Only approved
            # comments notify".
            choice, comment.notify = comment.notify, None
            if choice is not None:
                # The form's "Notify of" starts now, with the comment (at its approval).
                choice = choice.model_copy(update={"at": event.time})
                out.append(ToStage(Stage.INBOX, choice.subscriber_id, choice))
                self._keep_choice(choice)
            out += self._fan_out(thread, comment, event)
        elif status in RETRACTING and comment.notified:
            comment.notify = None
            subject = self._subject(thread, comment)
            if comment.direct is not None:  # sent from here: who got it is kept here
                out = [
                    ToStage(
                        Stage.INBOX,
                        rid,
                        Retraction(recipient_id=rid, subject_key=subject.key, cause=status),
                    )
                    for rid in comment.direct
                ]
            else:
                activity = Activity(
                    event="retract", subject=subject, cause=status, at=event.time, origin=event.id
                )
                entity = entity_key("commenter", comment.author_id)
                out = [ToStage(Stage.FOLLOWS, entity, activity)]
            out += self._forget_activity(thread, comment, status)
        if status in RETRACTING:
            comment.notify = None  # spam, trash or deleted before approval: subscribes nobody
        self.comments[key] = comment
        return out

    def _parent(self, comment: CommentInfo) -> CommentInfo | None:
        if comment.parent_id is None:
            return None
        return self.comments.get(comment_key(comment.article_id, comment.parent_id))

    def _subject(self, thread: Thread, comment: CommentInfo) -> Subject:
        article = thread.article or placeholder_article(comment.article_id)
        parent = self._parent(comment)
        return Subject(
            key=comment_subject(comment.id),
            article=article,
            comment=summarise(comment, article),
            parent=summarise(parent, article) if parent else None,
        )

    def _keep_choice(self, choice: FormChoice) -> None:
        """Remember a member's choice sent to their inbox, the latest of each kind, with their
        comments here (``Authored.chosen``), for the replies to them to carry (a guest's needs
        their confirmation first, which no reply stands in for)."""
        if choice.guest:
            return
        key = member_key(choice.article_id, choice.subscriber_id)
        authored = self.authored.get(key) or Authored()
        kept = authored.chosen.get(choice.choice)
        if kept is not None and kept.at > choice.at:
            return  # an older comment's event again (a replay): the latest choice stays
        authored.chosen[choice.choice] = Chose(
            subscriber_id=choice.subscriber_id,
            article_id=choice.article_id,
            choice=choice.choice,
            at=choice.at,
        )
        self.authored[key] = authored

    def _choices_replied_to(
        self, parent: CommentInfo | None, candidates: dict[str, list[Basis]], at: datetime
    ) -> dict[str, list[Chose]]:
        """The parent's author's choices in this thread, for the reply's candidacy to carry:
        their inbox may get the candidacy (through the follows stage) before a choice (sent to
        it directly)."""
        if parent is None or parent.author_id not in candidates:
            return {}
        carried = _carried(self.authored.get(member_key(parent.article_id, parent.author_id)), at)
        return {parent.author_id: carried} if carried else {}

    def _fan_out(self, thread: Thread, comment: CommentInfo, event: ev.CloudEvent) -> list[Intent]:
        parent = self._parent(comment)
        replay = comment.notified_by == event.id  # this very event was fanned out before
        if comment.notified_by is None and parent is not None:
            # Decided once, at the first fan-out: a replay (or a re-approval) sees the same.
            comment.parent_approved = parent.status == "approved"
        comment.notified = True
        comment.notified_by = event.id
        as_sent = comment
        if comment.notified_text is not None:  # edited since it was sent: a replay repeats it
            as_sent = comment.model_copy(update={"text": comment.notified_text})
        subject = self._subject(thread, as_sent)
        if thread.digest_schedules and comment.slot is None and not replay:
            # A comment fanned out before the article had digest followers is not their news:
            # the same event delivered again later (a rebalance) must not count it then.
            self._record_activity(thread, comment)
        candidates = comment_candidates(thread, as_sent, parent)
        activity = Activity(
            event="comment",
            subject=subject,
            candidates=candidates,
            at=event.time,
            origin=event.id,
            choices=self._choices_replied_to(parent, candidates, event.time),
        )
        entity = entity_key("commenter", comment.author_id)
        if replay:  # the route the first time took: who got it is kept there
            direct = comment.direct is not None
        else:
            direct = self.unfollowed is not None and entity in self.unfollowed
        if not direct:
            if self.unfollowed is not None and self._room():
                activity = activity.model_copy(update={"learn": True})
            return [ToStage(Stage.FOLLOWS, entity, activity)]
        # No followers to merge: the follows stage would hand the inbox exactly these.
        merged = merge_candidates(entity, activity, no_follower)
        sent_to = comment.direct or []
        comment.direct = sent_to + [rid for rid in merged if rid not in sent_to]
        return candidacies(entity, activity, merged)

    # ------------------------------------------------------ commenters' followers

    def on_no_followers(self, msg: NoFollowers) -> list[Intent]:
        """The follows stage found this commenter without followers: their next comments skip
        it (unless the table is at its cap: then they do not, which costs a hop and is
        otherwise the same)."""
        if self.unfollowed is None or msg.entity in self.unfollowed or not self._room():
            return []
        self.unfollowed[msg.entity] = Unfollowed()
        return []

    def _room(self) -> bool:
        """Whether the ``unfollowed`` table takes another commenter (past its cap nobody is
        asked about: every comment of a commenter not in it goes through the follows stage,
        which then does not tell every threads partition about them each time)."""
        assert self.unfollowed is not None
        count = self.unfollowed_count() if self.unfollowed_count else len(self.unfollowed)
        if count < self.unfollowed_max:
            return True
        self.on_capped("unfollowed_commenters")
        return False

    def on_commenter_followed(self, msg: CommenterFollowed) -> list[Intent]:
        """This commenter has a follower now (or was erased): their comments go through the
        follows stage again."""
        if self.unfollowed is not None:
            self.unfollowed.pop(msg.entity, None)
        return []

    # ------------------------------------------------------------ subscriptions

    def on_follow_change(self, article_id: str, change: FollowChange) -> list[Intent]:
        """An article-scope subscription became active, changed delivery/schedule, or ended."""
        thread = self.threads.get(article_id) or Thread()
        sid = change.subscriber_id
        changed = False
        wants_digest = change.active and change.delivery == "digest" and change.schedule
        member = self.digest_members.get(member_key(article_id, sid))
        if member is not None and not (wants_digest and member.schedule == change.schedule):
            self._leave_group(article_id, thread, sid, member.schedule)
            changed = True
        if wants_digest and (member is None or member.schedule != change.schedule):
            assert change.schedule is not None
            changed |= self._join_group(article_id, thread, sid, change.schedule)
        if change.active and change.delivery == "instant":
            if sid in thread.instant_followers:
                pass
            elif len(thread.instant_followers) < self.instant_followers_max:
                thread.instant_followers[sid] = "article"
                changed = True
            else:  # beyond the cap the follow is not recorded (docs/security.md, bounded state)
                self.on_capped("thread_instant_followers")
        elif thread.instant_followers.pop(sid, None) is not None:
            changed = True
        if changed:
            self.threads[article_id] = thread
        return []

    def on_erase(self, article_id: str, erase: Erase) -> list[Intent]:
        """Forget a subscriber in this thread: follower, participant, author name (rule "Erasure");
        and tell the follows stage, under each commenter of the thread, which comments may
        have been handed to them (the fan-out records of replies, mentions, follow-ups)."""
        sid = erase.subscriber_id
        thread = self.threads.get(article_id)
        if thread is None:
            return []
        thread.participants.pop(sid, None)
        forget_mentions(article_id)  # the thread's kept index holds their name
        thread.instant_followers.pop(sid, None)
        authored = self.authored.pop(member_key(article_id, sid), None)
        theirs_here = self._authored_ids(article_id, sid, authored)
        for comment_id in theirs_here:
            key = comment_key(article_id, comment_id)
            comment = self.comments.get(key)
            if comment is not None:
                comment.author_id = erased_author_id(comment_id)
                comment.author_name = ERASED_NAME
                comment.text = ""
                comment.notified_text = None
                comment.notify = None
                self.comments[key] = comment
                thread.erased_comments.append(comment_id)
        member = self.digest_members.get(member_key(article_id, sid))
        if member is not None:
            self._leave_group(article_id, thread, sid, member.schedule)
        self.threads[article_id] = thread
        self._forget_recipient(article_id, thread, sid)
        out: list[Intent] = []
        for participant in sorted(thread.participants):
            theirs = self.authored.get(member_key(article_id, participant))
            if theirs is not None and (theirs.comment_ids or theirs.overflow):
                # Past its cap the list is partial: the follows stage looks at every subject.
                subjects = [] if theirs.overflow else map(comment_subject, theirs.comment_ids)
                forget = Erase(subscriber_id=sid, subjects=list(subjects))
                out.append(ToStage(Stage.FOLLOWS, entity_key("commenter", participant), forget))
        for comment_id in thread.erased_comments:
            if comment_id not in theirs_here:
                forget = Erase(subscriber_id=sid, subjects=[comment_subject(comment_id)])
                entity = entity_key("commenter", erased_author_id(comment_id))
                out.append(ToStage(Stage.FOLLOWS, entity, forget))
        return out

    def _forget_recipient(self, article_id: str, thread: Thread, sid: str) -> None:
        """``sid`` leaves the recipients kept with this article's comments sent from here
        (``direct``): the comments of its participants and of erased authors are read (a
        reply, a mention or a follow-up only reaches a participant or a follower of the
        article; erasure is rare)."""
        ids = list(thread.erased_comments)
        for participant in sorted(thread.participants):
            theirs = self.authored.get(member_key(article_id, participant))
            ids += self._authored_ids(article_id, participant, theirs)
        for comment_id in dict.fromkeys(ids):
            key = comment_key(article_id, comment_id)
            comment = self.comments.get(key)
            if comment is not None and comment.direct and sid in comment.direct:
                comment.direct = [rid for rid in comment.direct if rid != sid]
                self.comments[key] = comment

    def _authored_ids(self, article_id: str, sid: str, authored: Authored | None) -> list[str]:
        """The ids of every comment ``sid`` wrote under this article: their ``Authored`` list,
        or past its cap a search of the article's comments (rare: an erasure)."""
        if authored is None or not authored.overflow:
            return list(authored.comment_ids) if authored else []
        prefix = comment_key(article_id, "")
        return [
            c.id
            for key, c in list(self.comments.items())
            if key.startswith(prefix) and c.article_id == article_id and c.author_id == sid
        ]

    def on_forget_participant(self, msg: ForgetParticipant) -> list[Intent]:
        """Erase a subscriber from every discussion of this partition they took part in: the
        inbox could not list them all (``Traces`` past its cap). A search of this partition's
        authors and threads: erasures are rare, and only a very prolific commenter's need it."""
        sid = msg.subscriber_id
        suffix = member_key("", sid)
        authored = {k[: -len(suffix)] for k in list(self.authored) if k.endswith(suffix)}
        out: list[Intent] = []
        # Only this partition's threads are read (each partition gets its own copy).
        for article_id in sorted(a for a in list(self.threads) if self.owns(a, msg.partition)):
            thread = self.threads[article_id]
            if (
                article_id in authored
                or sid in thread.participants
                or sid in thread.instant_followers
            ):
                out += self.on_erase(article_id, Erase(subscriber_id=sid))
        return out
