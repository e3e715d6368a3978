"""Telethon message objects to lake records."""

from __future__ import annotations

from datetime import datetime

from telethon.tl import types

from tgmed_common.records import MediaType, MessageRecord

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


def _forwarded_from(header: types.MessageFwdHeader | None) -> str | None:
    if header is None:
        return None
    if header.from_name:
        return header.from_name
    peer = header.from_id
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
        forwarded_from=_forwarded_from(message.fwd_from),
        reply_to_message_id=reply_to,
        scraped_at=scraped_at,
    )
