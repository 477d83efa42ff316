"""Serializers every partner API shares (registration's bookings, clinic bills, consult's
reports): how a patient is given to us and how we show one back, masked."""

from __future__ import annotations

from rest_framework import serializers


class PatientIn(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    id_number = serializers.CharField(max_length=18, help_text="Resident ID number (18 chars).")
    mobile = serializers.CharField(max_length=20, help_text="Mainland mobile number.")


class PatientOut(serializers.Serializer):
    name = serializers.CharField()
    id_number = serializers.CharField(source="masked_id_number")
    mobile = serializers.CharField(source="masked_phone")
