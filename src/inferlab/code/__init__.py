from inferlab.code.fim import FIM_TEMPLATES, FimTemplate, apply_fim, fim_template

__all__ = ["FIM_TEMPLATES", "FimTemplate", "apply_fim", "fim_template"]
