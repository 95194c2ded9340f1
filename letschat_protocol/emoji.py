"""The emoji people may react with, by shortcode (`:thumbsup:`), in the order a picker shows them.

A fixed set keeps reactions to what every client can draw, makes a reaction's key a short,
known string (it is a field name in the stored message), and gives `:name:` a meaning both
sides agree on.
"""

from __future__ import annotations

# The first ones are what the picker offers before anyone types.
EMOJI: dict[str, str] = {
    "thumbsup": "👍",
    "heart": "❤️",
    "joy": "😂",
    "tada": "🎉",
    "eyes": "👀",
    "pray": "🙏",
    "fire": "🔥",
    "white_check_mark": "✅",
    "thumbsdown": "👎",
    "smile": "😄",
    "slightly_smiling_face": "🙂",
    "wink": "😉",
    "thinking": "🤔",
    "cry": "😢",
    "sob": "😭",
    "open_mouth": "😮",
    "rage": "😡",
    "clap": "👏",
    "raised_hands": "🙌",
    "ok_hand": "👌",
    "muscle": "💪",
    "wave": "👋",
    "rocket": "🚀",
    "star": "⭐",
    "sparkles": "✨",
    "100": "💯",
    "bulb": "💡",
    "warning": "⚠️",
    "x": "❌",
    "question": "❓",
    "exclamation": "❗",
    "coffee": "☕",
    "beers": "🍻",
    "pizza": "🍕",
    "cake": "🍰",
    "sunglasses": "😎",
    "grin": "😁",
    "laughing": "😆",
    "sweat_smile": "😅",
    "upside_down_face": "🙃",
    "heart_eyes": "😍",
    "hugs": "🤗",
    "shrug": "🤷",
    "facepalm": "🤦",
    "see_no_evil": "🙈",
    "skull": "💀",
    "party": "🥳",
    "zzz": "💤",
    "point_up": "☝️",
    "bug": "🐛",
    "memo": "📝",
    "calendar": "📅",
    "lock": "🔒",
    "link": "🔗",
    "hourglass": "⏳",
    "checkered_flag": "🏁",
    "trophy": "🏆",
    "gift": "🎁",
    "sun": "☀️",
    "rainbow": "🌈",
}
ALLOWED: frozenset[str] = frozenset(EMOJI.values())
# How many the picker shows before the person types a name.
QUICK = tuple(EMOJI.values())[:8]


def shortcode(name: str) -> str | None:
    """The emoji for `:name:` (or `name`), if it is one of ours."""
    return EMOJI.get(name.strip().strip(":").lower())
