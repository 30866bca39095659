"""The entry path: live codes per channel, location to groups, QR codes, overflow and the funnel."""

from bot.entry.errors import EntryError
from bot.entry.funnel import ChannelFunnel, EntryFunnel
from bot.entry.geocoding import Gazetteer, GazetteerGeocoder, make_geocoder
from bot.entry.joins import EntryJoins
from bot.entry.overflow import OverflowPlacement
from bot.entry.qrcodes import GroupQrCodes, render_svg
from bot.entry.referral_codes import ReferralCodes
from bot.entry.service import EntryService

__all__ = [
    "ChannelFunnel",
    "EntryError",
    "EntryFunnel",
    "EntryJoins",
    "EntryService",
    "Gazetteer",
    "GazetteerGeocoder",
    "GroupQrCodes",
    "OverflowPlacement",
    "ReferralCodes",
    "make_geocoder",
    "render_svg",
]
