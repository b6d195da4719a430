"""Personas: the model (validation), the loader (YAML with line numbers), lint and the voice."""

from bot.persona.loader import load_persona_file, resolve_file
from bot.persona.model import Persona
from bot.persona.voice import Voice

__all__ = ["Persona", "Voice", "load_persona_file", "resolve_file"]
