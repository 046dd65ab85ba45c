from django.apps import AppConfig


class SimulationConfig(AppConfig):
    name = "tertulia.simulation"
    label = "simulation"

    def ready(self) -> None:
        from tertulia.messaging.channel import register
        from tertulia.simulation.channel import SimulatedChannel

        register("simulated", SimulatedChannel)
