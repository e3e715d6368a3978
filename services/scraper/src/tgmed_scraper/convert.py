"""Telethon objects to lake records: messages, the observation of their counts, and
the channel's snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telethon import utils
from telethon.tl import types

from tgmed_common.records import (
    ChannelSnapshotRecord,
    MediaType,
    MessageObservationRecord,
    MessageRecord,
    ReactionCount,
)

_DOCUMENT_KINDS: list[tuple[type, MediaType]] = [
    (types.DocumentAttributeSticker, "sticker"),
    (types.DocumentAttributeAnimated, "animation"),
    (types.DocumentAttributeVideo, "video"),
]


def media_type_of(media: object) -> MediaType | None:
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return None
    if isinstance(media, types.MessageMediaPhoto):
        return "photo"
    if isinstance(media, types.MessageMediaDocument):
        attributes = getattr(media.document, "attributes", None) or []
        for kind, name in _DOCUMENT_KINDS:
            if any(isinstance(a, kind) for a in attributes):
                return name
        for attribute in attributes:
            if isinstance(attribute, types.DocumentAttributeAudio):
                return "voice" if attribute.voice else "audio"
        return "document"
    if isinstance(media, types.MessageMediaWebPage):
        return "webpage"
    if isinstance(media, types.MessageMediaPoll):
        return "poll"
    if isinstance(
        media, types.MessageMediaGeo | types.MessageMediaGeoLive | types.MessageMediaVenue
    ):
        return "geo"
    if isinstance(media, types.MessageMediaContact):
        return "contact"
    return "other"


def has_photo(message: types.Message) -> bool:
    media = message.media
    return isinstance(media, types.MessageMediaPhoto) and isinstance(media.photo, types.Photo)


def reactions_of(message: types.Message) -> list[ReactionCount]:
    """Counts per reaction (emoji, custom emoji, paid stars); [] when there are none."""
    reactions = message.reactions
    if not isinstance(reactions, types.MessageReactions):
        return []
    counts = []
    for result in reactions.results:
        reaction = result.reaction
        if isinstance(reaction, types.ReactionEmoji):
            counts.append(
                ReactionCount(kind="emoji", reaction=reaction.emoticon, count=result.count)
            )
        elif isinstance(reaction, types.ReactionCustomEmoji):
            counts.append(
                ReactionCount(
                    kind="custom_emoji",
                    reaction=f"custom_emoji:{reaction.document_id}",
                    count=result.count,
                )
            )
        elif isinstance(reaction, types.ReactionPaid):
            counts.append(ReactionCount(kind="paid", reaction="paid", count=result.count))
    return counts


def _display_name(entity: Any) -> str | None:
    if entity is None:
        return None
    title = getattr(entity, "title", None)
    if title:
        return title
    name = " ".join(
        p for p in (getattr(entity, "first_name", None), getattr(entity, "last_name", None)) if p
    )
    return name or getattr(entity, "username", None) or None


@dataclass(frozen=True)
class ForwardSource:
    name: str | None  # readable: the source's title or the hidden sender's name
    peer_id: int | None  # stable: Bot API style (-100... for channels)
    message_id: int | None  # the post's id in the source channel


def forward_source(message: types.Message) -> ForwardSource | None:
    """Where a forward comes from. The id is the stable part (a channel can rename
    itself); the name is what a reader recognises; both are kept when both are known."""
    header = message.fwd_from
    if header is None:
        return None
    peer_id = utils.get_peer_id(header.from_id) if header.from_id is not None else None
    forward = getattr(message, "forward", None)  # Telethon's Forward, with the entities
    entity = (
        (getattr(forward, "chat", None) or getattr(forward, "sender", None)) if forward else None
    )
    name = header.from_name or _display_name(entity) or header.post_author
    if name is None and header.from_id is not None:
        name = _fallback_name(header.from_id)
    return ForwardSource(name=name, peer_id=peer_id, message_id=header.channel_post)


def _fallback_name(peer: types.TypePeer) -> str:
    if isinstance(peer, types.PeerChannel):
        return f"channel:{peer.channel_id}"
    if isinstance(peer, types.PeerUser):
        return f"user:{peer.user_id}"
    if isinstance(peer, types.PeerChat):
        return f"chat:{peer.chat_id}"
    return "unknown"


def message_to_record(
    message: types.Message,
    *,
    channel: str,
    channel_title: str | None,
    channel_id: int | None,
    media_path: str | None,
    scraped_at: datetime,
) -> MessageRecord:
    replies = message.replies.replies if message.replies is not None else None
    reply_to = getattr(message.reply_to, "reply_to_msg_id", None)
    forward = forward_source(message)
    return MessageRecord(
        source="telethon",
        channel_username=channel,
        channel_title=channel_title,
        channel_id=channel_id,
        message_id=message.id,
        date=message.date,
        edit_date=message.edit_date,
        text=message.message or "",
        views=message.views,
        forwards=message.forwards,
        replies=replies,
        media_type=media_type_of(message.media),
        media_path=media_path,
        grouped_id=message.grouped_id,
        forwarded_from=forward.name if forward else None,
        forwarded_from_id=forward.peer_id if forward else None,
        forwarded_message_id=forward.message_id if forward else None,
        reply_to_message_id=reply_to,
        reactions=reactions_of(message),
        scraped_at=scraped_at,
    )


def observation_of(record: MessageRecord) -> MessageObservationRecord:
    """The counts of a message record as read at its scrape time."""
    return MessageObservationRecord(
        channel_username=record.channel_username,
        channel_id=record.channel_id,
        message_id=record.message_id,
        message_date=record.date,
        views=record.views,
        forwards=record.forwards,
        replies=record.replies,
        reactions=record.reactions,
        observed_at=record.scraped_at,
    )


def snapshot_of(
    full: types.messages.ChatFull, *, channel: str, observed_at: datetime
) -> ChannelSnapshotRecord:
    """A channel's snapshot from `channels.getFullChannel`'s answer."""
    info = full.full_chat
    chat = next((c for c in full.chats if getattr(c, "id", None) == info.id), None)
    return ChannelSnapshotRecord(
        channel_username=channel,
        channel_id=info.id,
        title=getattr(chat, "title", None),
        description=getattr(info, "about", None) or None,
        subscribers=getattr(info, "participants_count", None),
        observed_at=observed_at,
    )
